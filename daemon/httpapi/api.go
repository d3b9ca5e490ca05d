// Package httpapi serves Corral's public HTTP API (/v1, JSON). It holds no
// cluster state of its own: it reads the local replica of the queue,
// writes through the leader, and asks the node that runs a job for its
// progress and log, through the narrow interfaces below.
package httpapi

import (
	"context"
	"io"
	"net/http"
	"time"

	"github.com/corral-dev/corral/daemon/acl"
	"github.com/corral-dev/corral/daemon/api"
	"github.com/corral-dev/corral/queue"
	"github.com/hashicorp/go-hclog"
)

// Store is the local replica of the queue (read only).
type Store interface {
	Get(id string) (*queue.Job, bool)
	// Children returns the IDs of the jobs that depend on job id.
	Children(id string) []string
	List(f queue.Filter) []*queue.Job
	// CountBulk counts the jobs a bulk command would change (dry run).
	CountBulk(k queue.Kind, f queue.BulkFilter, now time.Time) (int, error)
	Queues() []queue.QueueInfo
	Periodics() []queue.PeriodicInfo
	Periodic(name string) (queue.PeriodicInfo, bool)
	Index() uint64
	Watch() (uint64, <-chan struct{})
	Ahead
}

// Writer changes and reads the queue through the leader.
type Writer interface {
	// Write applies cmd on the leader (forwarding it from a follower) and
	// returns its result and the raft index of its entry.
	Write(ctx context.Context, cmd queue.Command) (queue.Result, uint64, error)
	// WriteAndWait is Write, then a wait (on the leader) of up to wait for
	// the jobs the command submitted to end; it returns them as they then
	// stand, in the order of the result's Submitted.
	WriteAndWait(ctx context.Context, cmd queue.Command, wait time.Duration) (queue.Result, uint64, []*queue.Job, error)
	// ReadJob reads a job from the leader after it verified its leadership
	// (nil when there is none).
	ReadJob(ctx context.Context, id string) (*queue.Job, uint64, error)
}

// Cluster is this node's view of the cluster.
type Cluster interface {
	Self() api.Self
	Leader() api.Leader
	Members() []api.Member
	RaftConfiguration() (api.RaftConfiguration, error)
	// RemovePeer removes a raft server (leader only).
	RemovePeer(ctx context.Context, id string) error
	// Leave leaves the cluster and stops the agent, in the background.
	Leave()
	// Staleness says whether this node knows a leader and how long ago it
	// last heard from it (0 on the leader).
	Staleness() (knownLeader bool, lastContact time.Duration)
	// Replayed reports whether the node has applied its whole log from
	// before the start, and how far it is.
	Replayed() (ok bool, applied, target uint64)
	// Nodes lists the alive nodes with their plugins and tags.
	Nodes() []Node
}

// Node is what the API needs to know about a node to explain why a job
// waits.
type Node struct {
	Name    string
	Plugins []string
	Tags    map[string]string
}

// Jobs reaches the node that runs or ran a job.
type Jobs interface {
	// Progress returns a running job's progress on node (nil when none).
	Progress(ctx context.Context, node, id string) *api.Progress
	// Log copies an attempt's log from node to w, following it while the
	// attempt runs when follow is set. flush is called after each chunk.
	Log(ctx context.Context, node, id string, attempt int, follow bool, w io.Writer, flush func()) error
}

// Plugins lists this node's plugins.
type Plugins interface {
	Plugins() []api.Plugin
}

// Config configures the API.
type Config struct {
	// NodeName is this node's name.
	NodeName string
	// MaxRequestBytes bounds a request body.
	MaxRequestBytes int
	// MaxPayloadBytes bounds a job's payload.
	MaxPayloadBytes int
	// EnableDebug serves /debug/pprof/.
	EnableDebug bool
	// Metrics serves GET /v1/metrics.
	Metrics http.Handler
	// ACLs, when set, turns ACLs on: every endpoint then needs a token
	// whose policies grant its permission. Nil means ACLs are disabled.
	ACLs ACLStore
	// Snapshots serves /v1/operator/snapshot (nil: not served).
	Snapshots Snapshots
	// Reloader serves PUT /v1/agent/reload (nil: not served).
	Reloader Reloader
	// Logger is the API's logger.
	Logger hclog.Logger
}

// API is the HTTP API of one node.
type API struct {
	cfg     Config
	store   Store
	writer  Writer
	cluster Cluster
	jobs    Jobs
	plugins Plugins
	logger  hclog.Logger
	// resolver resolves tokens; nil when ACLs are disabled.
	resolver *acl.Resolver
}

// New builds the API.
func New(cfg Config, store Store, writer Writer, cluster Cluster, jobs Jobs, plugins Plugins) *API {
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	h := &API{cfg: cfg, store: store, writer: writer, cluster: cluster, jobs: jobs, plugins: plugins, logger: cfg.Logger}
	if cfg.ACLs != nil {
		h.resolver = acl.NewResolver(cfg.ACLs)
	}
	return h
}
