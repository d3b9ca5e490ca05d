package discovery

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/serf/serf"
)

const (
	// DefaultSerfPort is the default gossip port (TCP and UDP).
	DefaultSerfPort = 4782
	// DefaultRetryInterval is the default wait between retry_join attempts.
	DefaultRetryInterval = 30 * time.Second

	serfEventBuffer   = 2048
	memberEventBuffer = 1024
)

// AgentConfig configures an Agent. Zero values take the documented defaults.
type AgentConfig struct {
	// NodeName is the unique Serf node name. Required.
	NodeName string
	// NodeID is the persistent node ID (the raft ServerID). Required.
	NodeID string
	// BindAddr is the gossip listen address. Default "0.0.0.0".
	BindAddr string
	// BindPort is the gossip listen port (TCP and UDP); 0 picks a free port.
	BindPort int
	// AdvertiseAddr is the address other nodes use to reach this one.
	// Default: derived from BindAddr by memberlist.
	AdvertiseAddr string
	// AdvertisePort is the advertised gossip port. Default BindPort.
	AdvertisePort int
	// Tags are user tags added to the node; they may not use the reserved
	// names (TagID, TagRaft, …).
	Tags map[string]string
	// RaftAddr is this node's raft address (host:port) as others dial it.
	// Required.
	RaftAddr string
	// HTTPAddr is this node's HTTP API address (host:port).
	HTTPAddr string
	// BootstrapExpect is advertised in the expect tag; see ManagerConfig.
	BootstrapExpect int
	// Bootstrapped is true when raft already has state on disk
	// (raft.HasExistingState). It is advertised in the bootstrapped tag
	// from the first gossip message on, so that no peer counts this node as
	// a fresh one when deciding to bootstrap. The Manager sets the tag
	// itself once raft gets a configuration.
	Bootstrapped bool
	// Plugins are the worker plugin names advertised in the plugins tag.
	Plugins []string
	// EncryptKey is the gossip encryption key (16, 24 or 32 bytes), or nil
	// for no encryption.
	EncryptKey []byte
	// SnapshotPath is the Serf snapshot file (data_dir/serf/local.snapshot)
	// used to rejoin known members after a restart. Empty disables it.
	SnapshotPath string
	// RetryJoin are gossip addresses (host:port) joined in the background,
	// retried every RetryInterval until one join succeeds.
	RetryJoin []string
	// RetryInterval is the wait between RetryJoin attempts. Default 30s.
	RetryInterval time.Duration
	// Logger is the logger; the agent uses Logger.Named("serf").
	// Default: a null logger.
	Logger hclog.Logger
	// Fast uses loopback/test gossip timings so that a failed node is
	// detected in about one to three seconds.
	Fast bool
}

// Validate reports the first bad field, wrapping ErrInvalidConfig (or
// ErrReservedTag / ErrInvalidKey).
func (c *AgentConfig) Validate() error {
	switch {
	case c.NodeName == "":
		return fmt.Errorf("%w: NodeName is empty", ErrInvalidConfig)
	case c.NodeID == "":
		return fmt.Errorf("%w: NodeID is empty", ErrInvalidConfig)
	case c.BindPort < 0 || c.BindPort > 65535:
		return fmt.Errorf("%w: BindPort %d is not in 0-65535", ErrInvalidConfig, c.BindPort)
	case c.AdvertisePort < 0 || c.AdvertisePort > 65535:
		return fmt.Errorf("%w: AdvertisePort %d is not in 0-65535", ErrInvalidConfig, c.AdvertisePort)
	case c.BootstrapExpect < 0:
		return fmt.Errorf("%w: BootstrapExpect %d is negative", ErrInvalidConfig, c.BootstrapExpect)
	case c.RetryInterval < 0:
		return fmt.Errorf("%w: RetryInterval %s is negative", ErrInvalidConfig, c.RetryInterval)
	}
	if _, _, err := net.SplitHostPort(c.RaftAddr); err != nil {
		return fmt.Errorf("%w: RaftAddr %q is not host:port: %w", ErrInvalidConfig, c.RaftAddr, err)
	}
	if c.HTTPAddr != "" {
		if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
			return fmt.Errorf("%w: HTTPAddr %q is not host:port: %w", ErrInvalidConfig, c.HTTPAddr, err)
		}
	}
	if c.EncryptKey != nil {
		if err := checkKeyLen(c.EncryptKey); err != nil {
			return err
		}
	}
	for _, k := range reservedTags {
		if _, ok := c.Tags[k]; ok {
			return fmt.Errorf("%w: user tag %q", ErrReservedTag, k)
		}
	}
	return nil
}

// Agent is this node's Serf member. It is safe for concurrent use.
type Agent struct {
	serf   *serf.Serf
	logger hclog.Logger

	tagsMu sync.Mutex
	tags   map[string]string

	serfEvents chan serf.Event
	events     chan MemberEvent

	shutdownOnce sync.Once
	shutdownCh   chan struct{}
	wg           sync.WaitGroup
}

// NewAgent starts a Serf agent. It rejoins the members in the snapshot (if
// any) and starts retry-join in the background; it does not block on
// joining.
func NewAgent(cfg AgentConfig) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	logger = logger.Named("serf")
	if cfg.BindAddr == "" {
		cfg.BindAddr = "0.0.0.0"
	}
	if cfg.RetryInterval == 0 {
		cfg.RetryInterval = DefaultRetryInterval
	}

	tags := make(map[string]string, len(cfg.Tags)+len(reservedTags))
	for k, v := range cfg.Tags {
		tags[k] = v
	}
	tags[TagID] = cfg.NodeID
	tags[TagRaft] = cfg.RaftAddr
	tags[TagHTTP] = cfg.HTTPAddr
	tags[TagRole] = RoleServer
	tags[TagExpect] = strconv.Itoa(cfg.BootstrapExpect)
	tags[TagPlugins] = joinPlugins(cfg.Plugins)
	if cfg.Bootstrapped {
		tags[TagBootstrapped] = "1"
	}

	a := &Agent{
		logger:     logger,
		tags:       tags,
		serfEvents: make(chan serf.Event, serfEventBuffer),
		events:     make(chan MemberEvent, memberEventBuffer),
		shutdownCh: make(chan struct{}),
	}

	conf, err := a.serfConfig(cfg)
	if err != nil {
		return nil, err
	}
	s, err := serf.Create(conf)
	if err != nil {
		return nil, fmt.Errorf("start serf: %w", err)
	}
	a.serf = s

	a.wg.Add(1)
	go a.forwardEvents()
	if len(cfg.RetryJoin) > 0 {
		a.wg.Add(1)
		go a.retryJoin(cfg.RetryJoin, cfg.RetryInterval)
	}
	return a, nil
}

func (a *Agent) serfConfig(cfg AgentConfig) (*serf.Config, error) {
	conf := serf.DefaultConfig()
	conf.Init()
	conf.NodeName = cfg.NodeName
	conf.Tags = a.copyTags()
	conf.EventCh = a.serfEvents
	conf.SnapshotPath = cfg.SnapshotPath
	// Members learn about each other's tags from gossip; a node that
	// rejoins after a graceful leave must be joined explicitly.
	conf.RejoinAfterLeave = false
	stdLog := a.logger.StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true})
	conf.Logger = stdLog

	if cfg.SnapshotPath != "" {
		if err := os.MkdirAll(filepath.Dir(cfg.SnapshotPath), 0o700); err != nil {
			return nil, fmt.Errorf("create serf snapshot dir: %w", err)
		}
	}

	var mc *memberlist.Config
	if cfg.Fast {
		// Fast, but not so tight that a node starved of CPU (every node
		// of a cluster on one small box, under load) is suspected: a dead
		// node is declared failed in about two seconds.
		mc = memberlist.DefaultLocalConfig()
		mc.ProbeInterval = 500 * time.Millisecond
		mc.ProbeTimeout = 400 * time.Millisecond
		mc.SuspicionMult = 4
		mc.SuspicionMaxTimeoutMult = 2
		mc.GossipInterval = 50 * time.Millisecond
		mc.PushPullInterval = 5 * time.Second
		mc.TCPTimeout = 500 * time.Millisecond
		conf.LeavePropagateDelay = 100 * time.Millisecond
		conf.BroadcastTimeout = 2 * time.Second
		conf.ReapInterval = time.Second
		conf.ReconnectInterval = time.Second
	} else {
		mc = memberlist.DefaultLANConfig()
	}
	mc.Name = cfg.NodeName
	mc.BindAddr = cfg.BindAddr
	mc.BindPort = cfg.BindPort
	mc.AdvertisePort = cfg.BindPort
	if cfg.AdvertiseAddr != "" {
		mc.AdvertiseAddr = cfg.AdvertiseAddr
	}
	if cfg.AdvertisePort != 0 {
		mc.AdvertisePort = cfg.AdvertisePort
	}
	if cfg.EncryptKey != nil {
		mc.SecretKey = cfg.EncryptKey
	}
	mc.Logger = stdLog
	conf.MemberlistConfig = mc
	return conf, nil
}

// forwardEvents converts Serf member events into MemberEvents. It never
// blocks Serf: when the consumer falls behind, events are dropped (the
// leader's periodic reconcile catches up).
func (a *Agent) forwardEvents() {
	defer a.wg.Done()
	for {
		select {
		case <-a.shutdownCh:
			return
		case e := <-a.serfEvents:
			me, ok := e.(serf.MemberEvent)
			if !ok {
				continue
			}
			typ, ok := eventTypeFromSerf(me.Type)
			if !ok {
				continue
			}
			ev := MemberEvent{Type: typ, Members: make([]Member, 0, len(me.Members))}
			for _, m := range me.Members {
				ev.Members = append(ev.Members, memberFromSerf(m))
			}
			select {
			case a.events <- ev:
			default:
				a.logger.Warn("member event dropped, consumer is behind", "event", typ, "members", len(ev.Members))
			}
		}
	}
}

func (a *Agent) retryJoin(addrs []string, interval time.Duration) {
	defer a.wg.Done()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for attempt := 1; ; attempt++ {
		select {
		case <-a.shutdownCh:
			return
		case <-timer.C:
		}
		n, err := a.serf.Join(addrs, true)
		if err == nil && n > 0 {
			a.logger.Info("retry join succeeded", "contacted", n, "attempt", attempt)
			return
		}
		a.logger.Warn("retry join failed, will retry", "addrs", addrs, "attempt", attempt, "retry_in", interval, "error", err)
		timer.Reset(interval)
	}
}

// Events returns the channel of membership changes. It has one consumer
// (the Manager); events are dropped rather than block gossip when the
// consumer falls behind. The channel is never closed.
func (a *Agent) Events() <-chan MemberEvent { return a.events }

// Members returns every member Serf knows, including failed and left ones.
func (a *Agent) Members() []Member {
	ms := a.serf.Members()
	out := make([]Member, 0, len(ms))
	for _, m := range ms {
		out = append(out, memberFromSerf(m))
	}
	return out
}

// LocalMember returns this node as Serf sees it (with the bound port).
func (a *Agent) LocalMember() Member { return memberFromSerf(a.serf.LocalMember()) }

// Join contacts the given gossip addresses (host:port) and returns how many
// were reached. It fails only when none could be reached.
func (a *Agent) Join(addrs []string) (int, error) {
	n, err := a.serf.Join(addrs, true)
	if err != nil {
		return n, fmt.Errorf("serf join %v: %w", addrs, err)
	}
	return n, nil
}

// SetPlugins replaces the plugins tag and gossips the change.
func (a *Agent) SetPlugins(plugins []string) error {
	return a.setTag(TagPlugins, joinPlugins(plugins))
}

func (a *Agent) setTag(key, value string) error {
	a.tagsMu.Lock()
	defer a.tagsMu.Unlock()
	if a.tags[key] == value {
		return nil
	}
	a.tags[key] = value
	if err := a.serf.SetTags(a.copyTagsLocked()); err != nil {
		return fmt.Errorf("set serf tag %s: %w", key, err)
	}
	return nil
}

func (a *Agent) copyTags() map[string]string {
	a.tagsMu.Lock()
	defer a.tagsMu.Unlock()
	return a.copyTagsLocked()
}

func (a *Agent) copyTagsLocked() map[string]string {
	out := make(map[string]string, len(a.tags))
	for k, v := range a.tags {
		out[k] = v
	}
	return out
}

// Leave broadcasts a graceful leave and waits for it to propagate. The
// agent must still be shut down afterwards.
func (a *Agent) Leave() error {
	if err := a.serf.Leave(); err != nil {
		return fmt.Errorf("serf leave: %w", err)
	}
	return nil
}

// Shutdown stops gossip without a leave message (peers will see this node
// as failed unless Leave was called first) and stops the agent's
// goroutines. It is safe to call more than once.
func (a *Agent) Shutdown() error {
	var err error
	a.shutdownOnce.Do(func() {
		close(a.shutdownCh)
		if e := a.serf.Shutdown(); e != nil {
			err = fmt.Errorf("serf shutdown: %w", e)
		}
		a.wg.Wait()
	})
	return err
}
