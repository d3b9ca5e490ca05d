package host

import (
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// discover builds an instance for every built-in, every executable in
// Dir and every configured name. Instances that cannot be launched (missing,
// not executable, duplicate name) come back already failed.
func (m *Manager) discover() []*instance {
	var out []*instance
	seen := map[string]bool{}
	add := func(inst *instance) {
		seen[inst.name] = true
		out = append(out, inst)
	}

	for _, name := range m.cfg.Builtins {
		add(m.newInstance(name, m.cfg.SelfExe, []string{"plugin", "serve", name}, true))
	}

	if m.cfg.Dir != "" {
		entries, err := os.ReadDir(m.cfg.Dir)
		if err != nil {
			m.logger.Error("cannot read plugin_dir", "dir", m.cfg.Dir, "error", err)
		}
		for _, e := range entries {
			name := e.Name()
			if strings.HasPrefix(name, ".") {
				continue
			}
			path := filepath.Join(m.cfg.Dir, name)
			_, configured := m.cfg.Plugins[name]
			if reason := notExecutable(path); reason != "" {
				switch {
				case configured:
					add(m.failedInstance(name, path, reason))
				case !seen[name] && !e.IsDir():
					add(m.skippedInstance(name, path, reason))
				default:
					m.logger.Debug("skipping plugin_dir entry", "path", path, "reason", reason)
				}
				continue
			}
			if seen[name] {
				m.logger.Warn("plugin file shadows a built-in; ignoring it", "path", path)
				continue
			}
			add(m.newInstance(name, path, nil, false))
		}
	}

	for name := range m.cfg.Plugins {
		if seen[name] {
			continue
		}
		reason := "not found: no built-in of that name and no file in plugin_dir"
		if m.cfg.Dir != "" {
			reason = fmt.Sprintf("not found: no built-in of that name and no file %q", filepath.Join(m.cfg.Dir, name))
		}
		add(m.failedInstance(name, "", reason))
	}
	return out
}

// notExecutable returns why path cannot be run as a plugin, or "".
func notExecutable(path string) string {
	fi, err := os.Stat(path) // follows symlinks
	switch {
	case err != nil:
		return err.Error()
	case fi.IsDir():
		return "is a directory"
	case !fi.Mode().IsRegular():
		return "not a regular file"
	case fi.Mode().Perm()&0o111 == 0:
		return fmt.Sprintf("not executable (mode %s); chmod +x it", fi.Mode().Perm())
	}
	return ""
}

// newInstance returns an instance ready to be launched.
func (m *Manager) newInstance(name, path string, args []string, builtin bool) *instance {
	pc := m.cfg.Plugins[name]
	conc := pc.Concurrency
	if conc == 0 {
		conc = DefaultConcurrency
		if builtin && name == "exec" {
			conc = DefaultExecConcurrency
		}
	}
	var sum []byte
	if pc.Checksum != "" {
		sum, _ = hex.DecodeString(pc.Checksum) // validated by Config.Validate
	}
	fp := ""
	if !builtin && path != "" {
		fp = fileFingerprint(path)
	}
	return &instance{
		fingerprint:  fp,
		name:         name,
		path:         path,
		args:         args,
		builtin:      builtin,
		concurrency:  conc,
		checksum:     sum,
		config:       pc.Config,
		startTimeout: m.cfg.StartTimeout,
		killGrace:    m.cfg.KillGrace,
		procCtx:      m.procCtx,
		logger:       m.logger.Named(name),
		state:        StateStarting,
		kick:         make(chan struct{}, 1),
	}
}

// skippedInstance returns an instance listed as skipped with reason.
func (m *Manager) skippedInstance(name, path, reason string) *instance {
	inst := m.newInstance(name, path, nil, false)
	inst.state = StateSkipped
	inst.err = reason
	m.logger.Warn("skipping plugin_dir entry", "path", path, "reason", reason)
	return inst
}

// failedInstance returns an instance listed as failed with reason.
func (m *Manager) failedInstance(name, path, reason string) *instance {
	inst := m.newInstance(name, path, nil, false)
	inst.state = StateFailed
	inst.err = reason
	m.logger.Error("plugin unavailable", "plugin", name, "error", reason)
	return inst
}
