// Package host is the daemon's side of worker plugins: it finds plugin
// executables, launches them over hashicorp/go-plugin (gRPC, AutoMTLS),
// fingerprints and configures them, runs jobs in them within a per-plugin
// concurrency limit, kills hung calls, and restarts crashed plugins with
// backoff.
//
// A plugin is known by its file name in plugin_dir (or its built-in name).
// A plugin that cannot start is listed as failed with a one-line reason and
// never retried; a plugin that crashes after a good start is restarted.
package host

import (
	"cmp"
	"context"
	"encoding/hex"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
)

// Defaults.
const (
	// DefaultConcurrency is a plugin's concurrency when none is configured.
	DefaultConcurrency = 4
	// DefaultExecConcurrency is the built-in exec plugin's default.
	DefaultExecConcurrency = 8
	// DefaultKillGrace is Config.KillGrace's default.
	DefaultKillGrace = 2 * time.Second
	// DefaultStartTimeout is Config.StartTimeout's default.
	DefaultStartTimeout = 15 * time.Second
)

// PluginConfig is the per-plugin configuration (a `plugin "NAME" {}` block).
type PluginConfig struct {
	// Concurrency is how many jobs the plugin runs at once (0: 4, or 8 for
	// exec).
	Concurrency int
	// Checksum is the hex SHA-256 the executable must have (optional).
	Checksum string
	// Config is the plugin's JSON-encoded config, passed to Configure.
	Config []byte
}

// Config configures a Manager.
type Config struct {
	// Dir is the plugin_dir to scan for executables ("" = none). Entries
	// that are not executable files are skipped.
	Dir string
	// Plugins holds per-name settings. A name that is neither a built-in nor
	// a file in Dir is listed as failed.
	Plugins map[string]PluginConfig
	// Builtins are the names served by SelfExe (exec, http, echo).
	Builtins []string
	// SelfExe is the corral binary; a built-in runs as `SelfExe plugin serve NAME`.
	SelfExe string
	// Logger receives the manager's and the plugins' logs (nil: discard).
	Logger hclog.Logger
	// KillGrace is how long a timed-out call may take to end after its
	// timeout before the plugin process is killed and restarted (0: 2s).
	KillGrace time.Duration
	// StartTimeout bounds a plugin's launch, handshake, Info and Configure
	// (0: 15s).
	StartTimeout time.Duration
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if len(c.Builtins) > 0 && c.SelfExe == "" {
		return fmt.Errorf("%w: SelfExe is required to serve built-ins %v", ErrInvalidConfig, c.Builtins)
	}
	for i, name := range c.Builtins {
		if name == "" || slices.Contains(c.Builtins[:i], name) {
			return fmt.Errorf("%w: Builtins has an empty or duplicate name %q", ErrInvalidConfig, name)
		}
	}
	for name, pc := range c.Plugins {
		if pc.Concurrency < 0 {
			return fmt.Errorf("%w: plugin %q: concurrency must be >= 0, got %d", ErrInvalidConfig, name, pc.Concurrency)
		}
		if pc.Checksum != "" {
			if sum, err := hex.DecodeString(pc.Checksum); err != nil || len(sum) != 32 {
				return fmt.Errorf("%w: plugin %q: checksum must be 64 hex digits (sha256), got %q", ErrInvalidConfig, name, pc.Checksum)
			}
		}
	}
	if c.KillGrace < 0 || c.StartTimeout < 0 {
		return fmt.Errorf("%w: KillGrace (%s) and StartTimeout (%s) must not be negative", ErrInvalidConfig, c.KillGrace, c.StartTimeout)
	}
	return nil
}

// State is a plugin's lifecycle state.
type State string

// Plugin states.
const (
	// StateStarting: being launched by Start.
	StateStarting State = "starting"
	// StateReady: running and accepting jobs.
	StateReady State = "ready"
	// StateRestarting: crashed, waiting to be relaunched.
	StateRestarting State = "restarting"
	// StateFailed: could not start; see Status.Error.
	StateFailed State = "failed"
	// StateSkipped: a plugin_dir entry that is not an executable file and
	// was not configured; listed so a forgotten chmod +x is visible.
	StateSkipped State = "skipped"
)

// String returns the state's name.
func (s State) String() string { return string(s) }

// Status describes one plugin for listings (`corral plugin list`).
type Status struct {
	Name        string `json:"name"`
	Version     string `json:"version"`
	Description string `json:"description"`
	Path        string `json:"path"`
	Builtin     bool   `json:"builtin"`
	Status      State  `json:"status"`
	// Error is a one-line reason when Status is failed, restarting or
	// skipped.
	Error       string `json:"error,omitempty"`
	Concurrency int    `json:"concurrency"`
	Running     int    `json:"running"`
	// PID is the plugin process's ID while it runs.
	PID int `json:"pid,omitempty"`
	// Restarts counts the relaunches of the plugin after a crash since
	// the Manager started.
	Restarts int `json:"restarts"`
}

// Manager runs worker plugins. Its methods are safe for concurrent use.
type Manager struct {
	cfg    Config
	logger hclog.Logger

	// superCtx stops supervisors; procCtx kills plugin processes outright.
	superCtx    context.Context
	stopSuper   context.CancelFunc
	procCtx     context.Context
	killProcs   context.CancelFunc
	supervisors sync.WaitGroup

	// reloadMu serialises Reloads.
	reloadMu  sync.Mutex
	mu        sync.Mutex
	instances map[string]*instance
	started   bool
	closed    bool
}

// New validates cfg and returns a Manager; Start launches the plugins.
func New(cfg Config) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.KillGrace == 0 {
		cfg.KillGrace = DefaultKillGrace
	}
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = DefaultStartTimeout
	}
	m := &Manager{cfg: cfg, logger: cfg.Logger, instances: map[string]*instance{}}
	m.superCtx, m.stopSuper = context.WithCancel(context.Background())
	m.procCtx, m.killProcs = context.WithCancel(context.Background())
	return m, nil
}

// Start scans Dir, launches every plugin, fingerprints it (Info) and
// configures it, in parallel. A plugin that fails is logged and listed as
// failed; Start itself only fails when ctx ends or the Manager is closed.
func (m *Manager) Start(ctx context.Context) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	if m.started {
		m.mu.Unlock()
		return fmt.Errorf("plugin manager already started")
	}
	m.started = true
	m.mu.Unlock()

	found := m.discover()
	m.mu.Lock()
	for _, inst := range found {
		m.instances[inst.name] = inst
	}
	m.mu.Unlock()

	var wg sync.WaitGroup
	for _, inst := range found {
		if inst.State() != StateStarting {
			continue // failed during discovery
		}
		wg.Go(func() {
			if inst.start(ctx) {
				m.supervise(inst)
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("starting plugins: %w", err)
	}
	return nil
}

// supervise starts inst's supervisor unless the Manager is closing.
func (m *Manager) supervise(inst *instance) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	m.supervisors.Go(func() { inst.supervise(m.superCtx) })
}

// Plugins lists every plugin, sorted by name.
func (m *Manager) Plugins() []Status {
	m.mu.Lock()
	insts := make([]*instance, 0, len(m.instances))
	for _, inst := range m.instances {
		insts = append(insts, inst)
	}
	m.mu.Unlock()
	out := make([]Status, 0, len(insts))
	for _, inst := range insts {
		out = append(out, inst.status())
	}
	slices.SortFunc(out, func(a, b Status) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// Free returns the number of free slots of every ready plugin.
func (m *Manager) Free() map[string]int {
	free := map[string]int{}
	for _, s := range m.Plugins() {
		if s.Status == StateReady {
			free[s.Name] = s.Concurrency - s.Running
		}
	}
	return free
}

// lookup returns the named plugin.
func (m *Manager) lookup(name string) (*instance, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	inst, ok := m.instances[name]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownPlugin, name)
	}
	return inst, nil
}

// closeTimeout bounds the graceful part of Close.
const closeTimeout = 5 * time.Second

// Close stops every plugin: it asks each to exit (cancelling its running
// jobs), kills any still running after a few seconds, and waits for the
// supervisors. It ends every managed go-plugin client in the process
// (plugin.CleanupClients), so a process should have one Manager.
func (m *Manager) Close() {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	m.closed = true
	insts := make([]*instance, 0, len(m.instances))
	for _, inst := range m.instances {
		insts = append(insts, inst)
	}
	m.mu.Unlock()

	m.stopSuper()
	var wg sync.WaitGroup
	for _, inst := range insts {
		wg.Go(inst.stop)
	}
	graceful := make(chan struct{})
	go func() {
		wg.Wait()
		close(graceful)
	}()
	timer := time.NewTimer(closeTimeout)
	defer timer.Stop()
	select {
	case <-graceful:
	case <-timer.C:
		m.logger.Warn("plugins did not exit in time; killing them", "timeout", closeTimeout)
	}
	m.killProcs() // SIGKILLs anything left, including plugins still launching
	<-graceful
	m.supervisors.Wait()
	plugin.CleanupClients()
}
