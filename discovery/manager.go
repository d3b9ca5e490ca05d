package discovery

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	autopilot "github.com/hashicorp/raft-autopilot"
)

// Defaults for ManagerConfig fields left zero.
const (
	DefaultMaxVoters                  = 5
	DefaultServerStabilizationTime    = 10 * time.Second
	DefaultDeadServerCleanupAfter     = 30 * time.Second
	DefaultLastContactThreshold       = 200 * time.Millisecond
	DefaultMaxTrailingLogs            = 250
	DefaultReconcileInterval          = 60 * time.Second
	DefaultAutopilotUpdateInterval    = autopilot.DefaultUpdateInterval
	DefaultAutopilotReconcileInterval = autopilot.DefaultReconcileInterval

	// minAutopilotInterval is the shortest derived autopilot reconcile
	// interval.
	minAutopilotInterval = 250 * time.Millisecond

	// reconcileBuffer is the capacity of the hand-off from the event loop
	// to the leader side; when it is full, member updates are dropped and
	// the periodic full reconcile picks them up.
	reconcileBuffer = 256
	// bootstrapCheckInterval is how often the event loop re-evaluates
	// bootstrap and the bootstrapped tag without a member event.
	bootstrapCheckInterval = time.Second
)

// StatsFetcher asks a server for its raft stats (usually over its HTTP API,
// answered there with LocalStats). It must honour ctx.
type StatsFetcher func(ctx context.Context, m Member) (*autopilot.ServerStats, error)

// ManagerConfig configures a Manager. Zero values take the documented
// defaults.
type ManagerConfig struct {
	// Raft is the node's raft instance, owned by the caller. Required.
	Raft *raft.Raft
	// Agent is the node's Serf agent, owned by the caller. Required.
	Agent *Agent
	// NodeID is this node's raft ServerID. Required.
	NodeID string
	// RaftHasState is raft.HasExistingState as checked before raft started.
	// When true the node never bootstraps.
	RaftHasState bool
	// BootstrapExpect is the number of servers to wait for before
	// bootstrapping a new cluster; 0 disables bootstrapping (the node waits
	// to be added by an existing leader).
	BootstrapExpect int
	// MaxVoters caps the number of raft voters; further servers stay
	// non-voters until a voter goes away. Default 5.
	MaxVoters int
	// ServerStabilizationTime is how long a new server must be healthy
	// before it is promoted to voter. Default 10s.
	ServerStabilizationTime time.Duration
	// DeadServerCleanupAfter is how long a server must have been failed
	// before it is removed from raft. Default 30s.
	DeadServerCleanupAfter time.Duration
	// MinQuorum is the smallest number of voters dead-server cleanup may
	// leave. Default 0 (only the (voters-1)/2 rule applies).
	MinQuorum int
	// LastContactThreshold is how long a server may go without leader
	// contact and still be healthy. Default 200ms.
	LastContactThreshold time.Duration
	// MaxTrailingLogs is how many entries a server may lag and still be
	// healthy. Default 250.
	MaxTrailingLogs uint64
	// ReconcileInterval is the period of the leader's full member
	// reconcile. Default 60s.
	ReconcileInterval time.Duration
	// AutopilotUpdateInterval is how often autopilot refreshes server
	// health. Default: half the reconcile interval, at most 2s.
	AutopilotUpdateInterval time.Duration
	// AutopilotReconcileInterval is how often autopilot applies promotions
	// and dead-server cleanup. Default: half the shorter of
	// ServerStabilizationTime and DeadServerCleanupAfter, between 250ms and
	// 10s, so that short timings (tests, small clusters) are acted on
	// promptly.
	AutopilotReconcileInterval time.Duration
	// StatsFetcher fetches a member's raft stats for health checks. Nil
	// treats every alive member as healthy and caught up.
	StatsFetcher StatsFetcher
	// OnNodeFailed is called on the leader when a server fails or leaves,
	// and again for every failed or left server on each full reconcile, so
	// it must be idempotent. It must return quickly.
	OnNodeFailed func(nodeID, nodeName string)
	// Logger is the logger; the manager uses Logger.Named("discovery").
	// Default: a null logger.
	Logger hclog.Logger
}

// Validate reports the first bad field, wrapping ErrInvalidConfig.
func (c *ManagerConfig) Validate() error {
	switch {
	case c.Raft == nil:
		return fmt.Errorf("%w: Raft is nil", ErrInvalidConfig)
	case c.Agent == nil:
		return fmt.Errorf("%w: Agent is nil", ErrInvalidConfig)
	case c.NodeID == "":
		return fmt.Errorf("%w: NodeID is empty", ErrInvalidConfig)
	case c.BootstrapExpect < 0:
		return fmt.Errorf("%w: BootstrapExpect %d is negative", ErrInvalidConfig, c.BootstrapExpect)
	case c.MaxVoters < 0:
		return fmt.Errorf("%w: MaxVoters %d is negative", ErrInvalidConfig, c.MaxVoters)
	case c.MinQuorum < 0:
		return fmt.Errorf("%w: MinQuorum %d is negative", ErrInvalidConfig, c.MinQuorum)
	case c.MaxVoters > 0 && c.MinQuorum > c.MaxVoters:
		return fmt.Errorf("%w: MinQuorum %d is above MaxVoters %d", ErrInvalidConfig, c.MinQuorum, c.MaxVoters)
	}
	for name, d := range map[string]time.Duration{
		"ServerStabilizationTime":    c.ServerStabilizationTime,
		"DeadServerCleanupAfter":     c.DeadServerCleanupAfter,
		"LastContactThreshold":       c.LastContactThreshold,
		"ReconcileInterval":          c.ReconcileInterval,
		"AutopilotUpdateInterval":    c.AutopilotUpdateInterval,
		"AutopilotReconcileInterval": c.AutopilotReconcileInterval,
	} {
		if d < 0 {
			return fmt.Errorf("%w: %s %s is negative", ErrInvalidConfig, name, d)
		}
	}
	return nil
}

func (c *ManagerConfig) setDefaults() {
	if c.MaxVoters == 0 {
		c.MaxVoters = DefaultMaxVoters
	}
	if c.ServerStabilizationTime == 0 {
		c.ServerStabilizationTime = DefaultServerStabilizationTime
	}
	if c.DeadServerCleanupAfter == 0 {
		c.DeadServerCleanupAfter = DefaultDeadServerCleanupAfter
	}
	if c.LastContactThreshold == 0 {
		c.LastContactThreshold = DefaultLastContactThreshold
	}
	if c.MaxTrailingLogs == 0 {
		c.MaxTrailingLogs = DefaultMaxTrailingLogs
	}
	if c.ReconcileInterval == 0 {
		c.ReconcileInterval = DefaultReconcileInterval
	}
	if c.AutopilotReconcileInterval == 0 {
		d := min(c.ServerStabilizationTime, c.DeadServerCleanupAfter) / 2
		c.AutopilotReconcileInterval = min(max(d, minAutopilotInterval), DefaultAutopilotReconcileInterval)
	}
	if c.AutopilotUpdateInterval == 0 {
		d := c.AutopilotReconcileInterval / 2
		c.AutopilotUpdateInterval = min(max(d, minAutopilotInterval/2), DefaultAutopilotUpdateInterval)
	}
	if c.OnNodeFailed == nil {
		c.OnNodeFailed = func(string, string) {}
	}
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
}

// Manager turns Serf membership into raft membership: it bootstraps a new
// cluster and, on the leader, reconciles members into the raft
// configuration with raft-autopilot doing promotions and dead-server
// cleanup. Run must be running; LeaderStart and LeaderStop follow raft
// leadership.
type Manager struct {
	cfg    ManagerConfig
	raft   *raft.Raft
	agent  *Agent
	self   raft.ServerID
	logger hclog.Logger
	// members lists the Serf members for conflict checks; nil means
	// agent.Members (tests set it).
	members func() []Member

	autopilot *autopilot.Autopilot
	failures  *failureTracker

	// isLeader gates the event loop's hand-off to the leader side.
	isLeader    atomic.Bool
	reconcileCh chan Member
	removeCh    chan raft.ServerID

	// bootstrap state, owned by the Run goroutine.
	bootstrapPending bool
	lastBootstrapMsg string
	tagged           bool

	leaderMu     sync.Mutex
	leaderCancel context.CancelFunc
	leaderDone   chan struct{}

	apState atomic.Pointer[autopilot.State]
}

// NewManager validates cfg and returns a Manager; nothing runs until Run.
func NewManager(cfg ManagerConfig) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	m := &Manager{
		cfg:              cfg,
		raft:             cfg.Raft,
		agent:            cfg.Agent,
		self:             raft.ServerID(cfg.NodeID),
		logger:           cfg.Logger.Named("discovery"),
		failures:         newFailureTracker(),
		reconcileCh:      make(chan Member, reconcileBuffer),
		removeCh:         make(chan raft.ServerID, reconcileBuffer),
		bootstrapPending: cfg.BootstrapExpect > 0 && !cfg.RaftHasState,
		tagged:           cfg.RaftHasState,
	}
	m.autopilot = autopilot.New(cfg.Raft, &delegate{m: m},
		autopilot.WithLogger(m.logger),
		autopilot.WithPromoter(&promoter{
			maxVoters:    cfg.MaxVoters,
			minQuorum:    cfg.MinQuorum,
			cleanupAfter: cfg.DeadServerCleanupAfter,
			self:         m.self,
			failures:     m.failures,
			logger:       m.logger,
		}),
		autopilot.WithUpdateInterval(cfg.AutopilotUpdateInterval),
		autopilot.WithReconcileInterval(cfg.AutopilotReconcileInterval),
	)
	return m, nil
}

// Run is the event loop: it reads member events, bootstraps raft when
// BootstrapExpect servers agree (only if raft had no state), advertises the
// bootstrapped tag once raft has a configuration, and hands member changes
// to the leader side without blocking. It returns when ctx is done, after
// stopping the leader side.
func (m *Manager) Run(ctx context.Context) {
	defer m.LeaderStop()
	if m.cfg.RaftHasState {
		m.markBootstrapped()
	}
	m.checkBootstrap()

	ticker := time.NewTicker(bootstrapCheckInterval)
	defer ticker.Stop()
	events := m.agent.Events()
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-events:
			m.handleEvent(ev)
		case <-ticker.C:
			m.checkBootstrap()
		}
	}
}

func (m *Manager) handleEvent(ev MemberEvent) {
	for _, mem := range ev.Members {
		srv, ok := ParseServer(mem)
		if !ok {
			continue
		}
		m.logger.Debug("member event", "event", ev.Type, "node", mem.Name, "id", srv.ID, "status", mem.Status)
		if _, conflict := conflicting(srv, m.liveServers()); conflict {
			continue // reconcileMember logs it; nothing is recorded for it
		}
		m.failures.observe(srv.ID, mem.Status)
		if !m.isLeader.Load() {
			continue
		}
		select {
		case m.reconcileCh <- mem:
		default:
			m.logger.Warn("reconcile queue full, member left to the periodic reconcile", "node", mem.Name)
		}
	}
	m.checkBootstrap()
}

// LeaderStart starts the leader side: autopilot, a full reconcile and the
// periodic reconcile. Call it after a successful Barrier on gaining
// leadership. Calling it while already started does nothing.
func (m *Manager) LeaderStart() {
	m.leaderMu.Lock()
	defer m.leaderMu.Unlock()
	if m.leaderCancel != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.leaderCancel = cancel
	m.leaderDone = make(chan struct{})
	m.drain()
	m.isLeader.Store(true)
	m.autopilot.Start(ctx)
	go m.leaderLoop(ctx, m.leaderDone)
	m.logger.Info("leader membership management started")
}

// LeaderStop stops the leader side and waits for it to finish. Calling it
// while stopped does nothing.
func (m *Manager) LeaderStop() {
	m.leaderMu.Lock()
	defer m.leaderMu.Unlock()
	if m.leaderCancel == nil {
		return
	}
	m.isLeader.Store(false)
	m.leaderCancel()
	<-m.autopilot.Stop()
	<-m.leaderDone
	m.leaderCancel, m.leaderDone = nil, nil
	m.apState.Store(nil)
	m.logger.Info("leader membership management stopped")
}

// drain empties the hand-off channels; a full reconcile follows.
func (m *Manager) drain() {
	for {
		select {
		case <-m.reconcileCh:
		case <-m.removeCh:
		default:
			return
		}
	}
}

// AutopilotState returns autopilot's latest view of server health while
// this node leads, or nil.
func (m *Manager) AutopilotState() *autopilot.State { return m.apState.Load() }

// Leave leaves the cluster gracefully: a leader first transfers leadership
// (or, failing that, removes itself from raft while other voters remain),
// then the agent broadcasts a Serf leave, and Leave waits until this node
// is out of the raft configuration or ctx ends (then it returns an error
// wrapping ErrNotRemoved). The caller still shuts down raft and the agent.
func (m *Manager) Leave(ctx context.Context) error {
	if m.raft.State() == raft.Leader && m.hasOtherVoters() {
		if err := m.raft.LeadershipTransfer().Error(); err != nil {
			m.logger.Warn("leadership transfer before leave failed", "error", err)
			if err := m.removeSelfAsLeader(); err != nil {
				m.logger.Warn("removing self from raft before leave failed", "error", err)
			}
		} else {
			m.logger.Info("leadership transferred before leave")
		}
	}
	if err := m.agent.Leave(); err != nil {
		return err
	}
	return m.waitRemoved(ctx)
}

// hasOtherVoters reports whether another voter could take leadership.
func (m *Manager) hasOtherVoters() bool {
	cfg, err := m.configuration()
	if err != nil {
		return false
	}
	for _, s := range cfg.Servers {
		if s.ID != m.self && s.Suffrage == raft.Voter {
			return true
		}
	}
	return false
}

func (m *Manager) removeSelfAsLeader() error {
	cfg, err := m.configuration()
	if err != nil {
		return err
	}
	if len(cfg.Servers) <= 1 || m.raft.State() != raft.Leader {
		return nil
	}
	if err := m.raft.RemoveServer(m.self, 0, 0).Error(); err != nil {
		return fmt.Errorf("remove self from raft: %w", err)
	}
	return nil
}

func (m *Manager) waitRemoved(ctx context.Context) error {
	ticker := time.NewTicker(50 * time.Millisecond)
	defer ticker.Stop()
	for {
		cfg, err := m.configuration()
		if err != nil {
			return err
		}
		inConfig, others := false, false
		for _, s := range cfg.Servers {
			if s.ID == m.self {
				inConfig = true
			} else {
				others = true
			}
		}
		if !inConfig || !others {
			// Out of the configuration, or the last server: nobody is
			// left to remove us.
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("leave: %w: %w", ErrNotRemoved, ctx.Err())
		case <-ticker.C:
		}
	}
}

func (m *Manager) configuration() (raft.Configuration, error) {
	f := m.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return raft.Configuration{}, fmt.Errorf("get raft configuration: %w", err)
	}
	return f.Configuration(), nil
}
