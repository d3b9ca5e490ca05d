// Package server is the replicated side of a Corral node: the group
// commit that turns commands into raft entries (applier), the leader loop
// (reaper, queue settings, membership hooks), the leader's half of the
// dispatch protocol (credits, claims, leases, reports), and the write path
// that sends a follower's commands to the leader. It never imports the
// worker: the two meet through the rpc package.
package server

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/corral-dev/corral/queue"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// Errors of the write path.
var (
	// ErrNotLeader means this node is not the leader and the write was not
	// applied; the caller forwards or retries.
	ErrNotLeader = errors.New("not the leader")
	// ErrLeadershipLost means leadership was lost after the write was handed
	// on: it may or may not have been committed.
	ErrLeadershipLost = errors.New("leadership lost while the write was in flight: it may or may not have been applied; retry with a unique_key to be safe")
	// ErrNoLeader means the cluster has no leader right now.
	ErrNoLeader = errors.New("no cluster leader: the cluster is electing one or has lost quorum; retry shortly")
	// ErrLeaderChanged means a call to the leader was abandoned because
	// another leader (or an election) became known meanwhile.
	ErrLeaderChanged = errors.New("the leader changed during the call")
	// ErrShuttingDown means the agent is stopping.
	ErrShuttingDown = errors.New("agent is shutting down")
)

// Membership is the part of gossip membership that runs on the leader
// only (discovery.Manager).
type Membership interface {
	LeaderStart()
	LeaderStop()
}

// Forwarder carries a follower's calls to the leader at addr (the rpc
// client).
type Forwarder interface {
	// Apply applies commands on the leader; with a wait, the leader then
	// waits up to it for the jobs they submitted to end and returns them
	// (see WriteAndWait). An error that wraps ErrNotLeader means nothing
	// was applied (the leader refused, or the call never reached it).
	Apply(ctx context.Context, addr string, cmds []queue.Command, wait time.Duration) ([]queue.Result, uint64, []*queue.Job, error)
	// ReadJob is the leader's ReadJobLocal.
	ReadJob(ctx context.Context, addr, id string) (*queue.Job, uint64, error)
}

// Config configures a Server.
type Config struct {
	// NodeID is this node's raft server ID.
	NodeID string
	// LeaseTTL is the lease length granted to claims and renewed by
	// heartbeats. Server config only: a worker cannot ask for another.
	LeaseTTL time.Duration
	// Queues are the queue settings of this node's config; a new leader
	// replicates them where the FSM differs.
	Queues map[string]queue.QueueConfig
	// Periodics are the periodic jobs of this node's config; a new leader
	// replicates them where the FSM differs.
	Periodics []queue.Periodic
	// Rates are the rate limits the queue blocks of this node's config
	// set; a new leader replicates them where the FSM differs. Queues
	// without one here keep whatever limit the API gave them.
	Rates map[string]queue.Rate
	// MaxResultBytes bounds the result of a reported attempt (0: no
	// bound). Workers enforce it themselves; the leader checks again so a
	// misbehaving node cannot put a larger one in the raft log.
	MaxResultBytes int
	// Logger is the server's logger.
	Logger hclog.Logger
}

// Server is the replicated side of one node.
type Server struct {
	cfg    Config
	logger hclog.Logger
	raft   *raft.Raft
	store  *queue.Store

	applier *applier
	leader  *leaderWatch
	// leaderCh is raft's NotifyCh: every leadership change, in order.
	leaderCh <-chan bool

	mu         sync.Mutex
	membership Membership
	forwarder  Forwarder
	sessions   map[string]*session // dispatch sessions by node name
	// term is cancelled when this node stops leading: everything that only
	// makes sense on the leader (dispatch sessions) hangs off it.
	term context.Context
}

// New builds a server on a running raft whose FSM is store. leaderCh is
// raft's NotifyCh. Nothing runs until Run.
func New(cfg Config, r *raft.Raft, leaderCh <-chan bool, store *queue.Store) *Server {
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = queue.DefaultLeaseTTL
	}
	done, cancel := context.WithCancel(context.Background())
	cancel() // not leading yet
	return &Server{
		cfg:      cfg,
		logger:   cfg.Logger,
		raft:     r,
		store:    store,
		applier:  newApplier(r, cfg.Logger.Named("applier")),
		leader:   newLeaderWatch(r, cfg.NodeID),
		leaderCh: leaderCh,
		sessions: map[string]*session{},
		term:     done,
	}
}

// SetMembership sets the leader-only membership hooks (before Run).
func (s *Server) SetMembership(m Membership) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.membership = m
}

// SetForwarder sets how a follower reaches the leader (before Run).
func (s *Server) SetForwarder(f Forwarder) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forwarder = f
}

// Run runs the applier, the leader watch and the leadership monitor until
// ctx ends.
func (s *Server) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, f := range []func(context.Context){s.applier.run, s.leader.run, s.monitorLeadership} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(ctx)
		}()
	}
	wg.Wait()
}

// IsLeader reports whether this node leads.
func (s *Server) IsLeader() bool { return s.raft.State() == raft.Leader }

// Apply replicates cmd through this node's raft; only the leader can. It
// returns the command's result and the raft index of its entry.
func (s *Server) Apply(ctx context.Context, cmd queue.Command) (queue.Result, uint64, error) {
	return s.applier.Apply(ctx, cmd)
}

// Store returns the local replica of the queue.
func (s *Server) Store() *queue.Store { return s.store }

// FailNode ends every lease of the named node as lost and re-queues its
// jobs, in one command (a failed or departed node: fencing makes any late
// report from it harmless). It runs on the leader, in the background, and
// may be called repeatedly for the same node.
func (s *Server) FailNode(ctx context.Context, node, reason string) {
	if len(s.store.Running(node)) == 0 {
		return
	}
	go func() {
		res, _, err := s.applier.Apply(ctx, &queue.FailNode{Node: node, Reason: reason})
		if err = errors.Join(err, res.Err); err != nil {
			s.logger.Warn("cannot re-queue jobs of failed node", "node", node, "error", err)
			return
		}
		s.logger.Info("re-queued jobs of failed node", "node", node, "jobs", res.Count)
	}()
}

// firstErr returns the first non-nil error.
func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}
