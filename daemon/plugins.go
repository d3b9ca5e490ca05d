package daemon

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/corral-dev/corral/daemon/api"
	"github.com/corral-dev/corral/plugins/builtin"
	"github.com/corral-dev/corral/plugins/host"
)

// Option adjusts an agent beyond its config (for tests and tools).
type Option func(*Agent)

// WithPluginExe sets the corral binary that serves the built-in plugins
// (`EXE plugin serve NAME`); by default the running executable. Tests that
// run agents in-process point it at a built corral binary.
func WithPluginExe(path string) Option { return func(a *Agent) { a.pluginExe = path } }

// WithoutBuiltins runs no built-in plugins.
func WithoutBuiltins() Option { return func(a *Agent) { a.noBuiltins = true } }

// startPlugins launches the plugin manager. A broken plugin is reported in
// its status and does not stop the agent.
func (a *Agent) startPlugins(ctx context.Context) error {
	cfg := host.Config{
		Dir:     a.cfg.PluginDir,
		Plugins: map[string]host.PluginConfig{},
		Logger:  a.logger.Named("plugins"),
	}
	for name, p := range a.cfg.Plugins {
		cfg.Plugins[name] = host.PluginConfig{Concurrency: p.Concurrency, Checksum: p.Checksum, Config: p.Config}
	}
	if !a.noBuiltins {
		exe := a.pluginExe
		if exe == "" {
			var err error
			if exe, err = os.Executable(); err != nil {
				return fmt.Errorf("find the corral binary for built-in plugins: %w", err)
			}
		}
		cfg.Builtins, cfg.SelfExe = builtin.Names(), exe
	}
	m, err := host.New(cfg)
	if err != nil {
		return fmt.Errorf("plugins: %w", err)
	}
	a.plugins = m
	if err := m.Start(ctx); err != nil {
		return fmt.Errorf("plugins: %w", err)
	}
	for _, st := range m.Plugins() {
		switch st.Status {
		case host.StateFailed:
			a.logger.Error("plugin unavailable", "plugin", st.Name, "error", st.Error)
		case host.StateSkipped:
			a.logger.Warn("plugin_dir entry skipped", "file", st.Path, "reason", st.Error)
		default:
			a.logger.Info("plugin ready", "plugin", st.Name, "version", st.Version, "concurrency", st.Concurrency)
		}
	}
	return nil
}

// localPluginNames lists the plugins this node can run (a crashed plugin
// that is being restarted counts).
func (a *Agent) localPluginNames() []string {
	if a.plugins == nil {
		return nil
	}
	var names []string
	for _, st := range a.plugins.Plugins() {
		if st.Status == host.StateReady || st.Status == host.StateRestarting {
			names = append(names, st.Name)
		}
	}
	return names
}

// startDispatcher starts taking work from the leader.
func (a *Agent) startDispatcher() {
	ttl := a.cfg.Limits.LeaseTTL
	if ttl <= 0 {
		ttl = 30 * time.Second
	}
	a.dispatcher = newDispatcher(a.cfg.NodeName, a.cfg.Tags, ttl, a.cfg.Limits.MaxResultBytes,
		a.plugins, a.leaderHTTP, a.logs, a.logger.Named("dispatcher"))
	a.dispatcher.local = a
	a.goRun(a.dispatcher.run)
}

// handlePlugins serves GET /v1/plugins: this node's plugins.
func (a *Agent) handlePlugins(w http.ResponseWriter, r *http.Request) {
	out := api.PluginList{Node: a.cfg.NodeName, Plugins: []api.Plugin{}}
	if a.plugins != nil {
		for _, st := range a.plugins.Plugins() {
			out.Plugins = append(out.Plugins, api.Plugin{
				Name: st.Name, Version: st.Version, Description: st.Description, Path: st.Path,
				Builtin: st.Builtin, Status: st.Status.String(), Error: st.Error,
				Concurrency: st.Concurrency, Running: st.Running, PID: st.PID,
			})
		}
	}
	writeJSON(w, http.StatusOK, out, 0)
}
