package daemon

import (
	"context"
	"fmt"
	"os"

	"github.com/corral-dev/corral/daemon/config"
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

// pluginConfig translates the config's plugin_dir and plugin blocks.
func (a *Agent) pluginConfig(c *config.Config) host.Config {
	cfg := host.Config{Dir: c.PluginDir, Plugins: map[string]host.PluginConfig{}}
	for name, p := range c.Plugins {
		cfg.Plugins[name] = host.PluginConfig{Concurrency: p.Concurrency, Checksum: p.Checksum, Config: p.Config}
	}
	return cfg
}

// startPlugins launches the plugin manager. A broken plugin is reported in
// its status and does not stop the agent.
func (a *Agent) startPlugins(ctx context.Context) error {
	cfg := a.pluginConfig(a.cfg)
	cfg.Logger = a.logger.Named("plugins")
	if !a.noBuiltins {
		exe := a.pluginExe
		if exe == "" {
			var err error
			if exe, err = os.Executable(); err != nil {
				return fmt.Errorf("find the corral binary for built-in plugins: %w", err)
			}
		}
		for _, name := range builtin.Names() {
			if a.cfg.PluginEnabled(name) {
				cfg.Builtins = append(cfg.Builtins, name)
			}
		}
		cfg.SelfExe = exe
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
