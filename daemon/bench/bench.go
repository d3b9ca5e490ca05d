// Package bench is the driver behind `corral bench`: it measures a Corral
// cluster end to end through the HTTP API, either one it starts itself
// (N real agents as child processes, each with its own data directory,
// fsync on, running the built-in echo plugin) or an existing one.
//
// Two load shapes mirror the peer baselines in shared/peersbench:
//
//   - steady: a closed loop of Inflight workers, each submitting one job
//     and waiting (blocking query) until it has succeeded, for a measured
//     window after a warmup. jobs/s counts jobs that completed in the
//     window; latencies are submit (POST → ack) and end to end (POST start
//     → success observed).
//   - burndown: J jobs enqueued in batches by a few concurrent submitters;
//     the clock runs from the first submit until all J have succeeded.
//     End-to-end latencies are each job's created_at → finished_at.
//
// Every run ends with one Result, printed as a RESULT line (Result.Line).
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/corral-dev/corral/daemon/api"
	"github.com/hashicorp/go-hclog"
)

// Mode is a load shape.
type Mode int

// The load shapes.
const (
	ModeInvalid Mode = iota
	ModeSteady
	ModeBurndown
)

// String returns the mode's flag spelling.
func (m Mode) String() string {
	switch m {
	case ModeSteady:
		return "steady"
	case ModeBurndown:
		return "burndown"
	}
	return "invalid"
}

// ParseMode parses "steady" or "burndown".
func ParseMode(s string) (Mode, error) {
	switch s {
	case "steady":
		return ModeSteady, nil
	case "burndown":
		return ModeBurndown, nil
	}
	return ModeInvalid, fmt.Errorf("%w: %q (want steady or burndown)", ErrBadMode, s)
}

var (
	// ErrBadMode is returned for an unknown load shape.
	ErrBadMode = errors.New("unknown mode")
	// ErrInvalidConfig wraps every Config.Validate failure.
	ErrInvalidConfig = errors.New("invalid bench config")
	// ErrClusterStart is returned when a local cluster does not come up.
	ErrClusterStart = errors.New("local cluster did not start")
	// ErrIncomplete is returned when a burndown ends (timeout, interrupt)
	// before every job finished.
	ErrIncomplete = errors.New("not every job finished")
	// ErrNotResult is returned by ParseResult for a line that is not a
	// RESULT line.
	ErrNotResult = errors.New("not a RESULT line")
)

// Config is one bench run.
type Config struct {
	// Mode is the load shape.
	Mode Mode
	// Local is the number of agents to start as child processes; 0 means
	// use Addresses.
	Local int
	// Addresses are the HTTP API addresses of an existing cluster's nodes;
	// submits are spread over them. Used only when Local is 0.
	Addresses []string
	// Token is sent with every request.
	Token string
	// Via picks the nodes that take the load: ViaAll (spread over every
	// node), ViaLeader or ViaFollowers, to tell the leader's path from a
	// forwarded one.
	Via string
	// Binary is the corral executable the local agents run; "" means the
	// running executable.
	Binary string
	// EchoConcurrency is the echo plugin's slots on each local agent.
	EchoConcurrency int
	// KeepDirs leaves the local agents' directories (data and logs) in
	// place and names them in the log.
	KeepDirs bool
	// TLS runs the local cluster's node plane with mutual TLS (a CA and
	// server certificate made for the run), to measure its cost.
	TLS bool
	// StartTimeout bounds how long the local cluster may take to elect a
	// leader with Local voters and ready echo plugins.
	StartTimeout time.Duration

	// Queue is the queue the bench jobs go to.
	Queue string
	// Size is the JSON payload size in bytes of every job.
	Size int

	// Inflight is the number of closed-loop workers (steady).
	Inflight int
	// Duration is the measured window (steady).
	Duration time.Duration
	// Warmup runs before the window and is not measured (steady).
	Warmup time.Duration

	// Jobs is the number of jobs to enqueue (burndown).
	Jobs int
	// Batch is the number of jobs per submit request (burndown).
	Batch int
	// Submitters is the number of concurrent batch submitters (burndown).
	Submitters int
	// Timeout bounds a burndown from first submit to last completion.
	Timeout time.Duration

	// Progress receives a progress line about once a second ("\r"
	// redrawn, for a terminal); nil means none.
	Progress io.Writer
}

// DefaultConfig returns a steady run against a 1-node local cluster with
// the defaults of `corral bench`.
func DefaultConfig() Config {
	return Config{
		Mode:            ModeSteady,
		Local:           0,
		EchoConcurrency: 256,
		StartTimeout:    60 * time.Second,
		Queue:           "bench",
		Size:            200,
		Inflight:        64,
		Duration:        10 * time.Second,
		Warmup:          time.Second,
		Jobs:            100000,
		Batch:           1000,
		Submitters:      4,
		Timeout:         10 * time.Minute,
		Via:             ViaAll,
	}
}

// minSize is the smallest payload: `{"sleep":"0s"}`.
const minSize = len(`{"sleep":"0s"}`)

// Validate checks the configuration; every error wraps ErrInvalidConfig
// and names the flag.
func (c *Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...)
	}
	switch {
	case c.Mode != ModeSteady && c.Mode != ModeBurndown:
		return bad("-mode must be steady or burndown")
	case c.Local < 0:
		return bad("-local=%d: must be at least 1", c.Local)
	case c.Local == 0 && len(c.Addresses) == 0:
		return bad("give -local N to start a cluster or -address to target one")
	case c.Local > 0 && len(c.Addresses) > 0:
		return bad("-local and -address exclude each other")
	case c.Local > 9:
		return bad("-local=%d: at most 9 agents", c.Local)
	case c.Local > 0 && c.EchoConcurrency < 1:
		return bad("-echo-concurrency=%d: must be at least 1", c.EchoConcurrency)
	case c.Local > 0 && c.StartTimeout <= 0:
		return bad("-start-timeout=%s: must be positive", c.StartTimeout)
	case c.Via != ViaAll && c.Via != ViaLeader && c.Via != ViaFollowers:
		return bad("-via=%q: must be %s, %s or %s", c.Via, ViaAll, ViaLeader, ViaFollowers)
	case c.Queue == "":
		return bad("-queue must not be empty")
	case c.Size < minSize:
		return bad("-size=%d: must be at least %d bytes", c.Size, minSize)
	}
	if c.Mode == ModeSteady {
		switch {
		case c.Inflight < 1:
			return bad("-inflight=%d: must be at least 1", c.Inflight)
		case c.Duration <= 0:
			return bad("-duration=%s: must be positive", c.Duration)
		case c.Warmup < 0:
			return bad("-warmup=%s: must not be negative", c.Warmup)
		}
		return nil
	}
	switch {
	case c.Jobs < 1:
		return bad("-jobs=%d: must be at least 1", c.Jobs)
	case c.Batch < 1:
		return bad("-batch=%d: must be at least 1", c.Batch)
	case c.Submitters < 1:
		return bad("-submitters=%d: must be at least 1", c.Submitters)
	case c.Timeout <= 0:
		return bad("-timeout=%s: must be positive", c.Timeout)
	}
	return nil
}

// Run validates cfg, starts a local cluster when cfg.Local > 0 (and stops
// it and removes its directories before returning), runs the load and
// returns its result.
func Run(ctx context.Context, cfg Config, logger hclog.Logger) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	addrs := cfg.Addresses
	var cpu func() (agents, plugins time.Duration, ok bool)
	if cfg.Local > 0 {
		cl, err := StartLocal(ctx, LocalConfig{
			Nodes:           cfg.Local,
			Binary:          cfg.Binary,
			EchoConcurrency: cfg.EchoConcurrency,
			StartTimeout:    cfg.StartTimeout,
			KeepDirs:        cfg.KeepDirs,
			TLS:             cfg.TLS,
		}, logger)
		if err != nil {
			return nil, err
		}
		defer func() {
			if err := cl.Stop(); err != nil {
				logger.Error("stop local cluster", "error", err)
			}
		}()
		addrs = cl.Addresses()
		cpu = cl.CPU
	} else if len(addrs) == 1 {
		addrs = discover(ctx, addrs[0], cfg.Token, logger)
	}
	cluster := len(addrs)
	if cfg.Via != ViaAll {
		picked, err := pickVia(ctx, addrs, cfg.Via, cfg.Token)
		if err != nil {
			return nil, err
		}
		addrs = picked
	}
	r := &runner{cfg: cfg, addrs: addrs, logger: logger, payload: payload(cfg.Size), cpu: cpu}
	clients, err := r.newClients()
	if err != nil {
		return nil, err
	}
	r.clients = clients
	var res *Result
	if cfg.Mode == ModeSteady {
		res, err = r.steady(ctx)
	} else {
		res, err = r.burndown(ctx)
	}
	if res != nil {
		res.Mode = cfg.Mode.String()
		res.Nodes = cluster
		res.Via = cfg.Via
		res.Size = cfg.Size
	}
	return res, err
}

// runner holds what both load shapes share.
type runner struct {
	cfg   Config
	addrs []string
	// clients has one client per node, for the runner's own calls.
	clients []*api.Client
	logger  hclog.Logger
	payload []byte
	// cpu reads the local agents' and plugins' CPU time; nil against
	// -address.
	cpu func() (agents, plugins time.Duration, ok bool)
}

// cpuMeter measures the local agents' and plugins' CPU time over a span.
type cpuMeter struct {
	read            func() (agents, plugins time.Duration, ok bool)
	agents, plugins time.Duration // at begin, then used in the span
	ok              bool
}

// begin starts the span.
func (m *cpuMeter) begin() {
	if m.read != nil {
		m.agents, m.plugins, m.ok = m.read()
	}
}

// end closes the span.
func (m *cpuMeter) end() {
	if !m.ok {
		return
	}
	agents, plugins, ok := m.read()
	m.ok = ok && agents >= m.agents
	m.agents, m.plugins = agents-m.agents, max(plugins-m.plugins, 0)
}

// fill records the span's CPU time in res, when it is known.
func (m *cpuMeter) fill(res *Result) {
	if m.ok {
		res.AgentCPU, res.PluginCPU, res.CPUKnown = m.agents, m.plugins, true
	}
}

// newClients returns a client for each node. Each load goroutine gets its
// own set: an api.Client's transport keeps only a couple of idle
// connections per host, so sharing one among many goroutines would open a
// new connection for most requests and measure that instead.
func (r *runner) newClients() ([]*api.Client, error) {
	out := make([]*api.Client, len(r.addrs))
	for i, a := range r.addrs {
		c, err := api.NewClient(a, r.cfg.Token)
		if err != nil {
			return nil, fmt.Errorf("%w: -address %q: %w", ErrInvalidConfig, a, err)
		}
		out[i] = c
	}
	return out, nil
}

// job returns the request of one bench job.
func (r *runner) job() api.JobRequest {
	return api.JobRequest{Queue: r.cfg.Queue, Plugin: "echo", Payload: r.payload}
}

// payload returns a JSON object of exactly size bytes (size >= minSize)
// that the echo plugin runs as a no-op with no result. The plugin rejects
// unknown keys, so the padding is leading zeros of a zero sleep:
// {"sleep":"000…0s"}.
func payload(size int) []byte {
	b := make([]byte, 0, size)
	b = append(b, `{"sleep":"`...)
	for len(b) < size-len(`s"}`) {
		b = append(b, '0')
	}
	return append(b, `s"}`...)
}

// progress draws one progress line when cfg.Progress is set.
func (r *runner) progress(format string, args ...any) {
	if r.cfg.Progress != nil {
		fmt.Fprintf(r.cfg.Progress, "\r\x1b[K"+format, args...)
	}
}

// endProgress clears the progress line.
func (r *runner) endProgress() {
	if r.cfg.Progress != nil {
		fmt.Fprint(r.cfg.Progress, "\r\x1b[K")
	}
}

// discover returns the HTTP addresses of every alive member seen by the
// node at addr (addr itself first), or just addr when the member list is
// unavailable.
func discover(ctx context.Context, addr, token string, logger hclog.Logger) []string {
	cl, err := api.NewClient(addr, token)
	if err != nil {
		return []string{addr} // Run reports the bad address
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	members, err := cl.Members(ctx)
	if err != nil {
		logger.Warn("cannot list members; loading one node only", "address", addr, "error", err)
		return []string{addr}
	}
	self := strings.TrimPrefix(strings.TrimPrefix(cl.Address(), "http://"), "https://")
	out := []string{addr}
	for _, m := range members {
		if h := m.Tags["http"]; m.Status == "alive" && h != "" && h != self {
			out = append(out, h)
		}
	}
	return out
}

// Values of Config.Via.
const (
	ViaAll       = "all"
	ViaLeader    = "leader"
	ViaFollowers = "followers"
)

// pickVia keeps the addresses of the leader (via = ViaLeader) or of every
// other node (ViaFollowers), as the first node that answers sees them.
func pickVia(ctx context.Context, addrs []string, via, token string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var leader *api.Leader
	var lastErr error
	for _, a := range addrs {
		cl, err := api.NewClient(a, token)
		if err != nil {
			return nil, fmt.Errorf("%w: -address %q: %w", ErrInvalidConfig, a, err)
		}
		if leader, lastErr = cl.Leader(ctx); lastErr == nil && leader.HTTP != "" {
			break
		}
		leader = nil
	}
	if leader == nil {
		return nil, fmt.Errorf("-via=%s: no node named the leader's HTTP address (last error: %v)", via, lastErr)
	}
	host := func(a string) string { return strings.TrimPrefix(strings.TrimPrefix(a, "http://"), "https://") }
	var out []string
	for _, a := range addrs {
		if (host(a) == host(leader.HTTP)) == (via == ViaLeader) {
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("-via=%s: none of the nodes %v is the %s (leader at %s)", via, addrs, via, leader.HTTP)
	}
	return out, nil
}
