package host

import (
	"bytes"

	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"slices"
)

// StateDraining: replaced or removed by a reload; it takes no new jobs
// and is stopped once its running jobs finish.
const StateDraining State = "draining"

// ReloadReport says what a Reload did, by plugin name.
type ReloadReport struct {
	// Started are new plugins, launched now.
	Started []string
	// Restarted are plugins whose executable or settings changed (or that
	// had failed): each is relaunched once its running jobs finish.
	Restarted []string
	// Removed are plugins that are gone: each is stopped once its running
	// jobs finish.
	Removed []string
}

// Reload applies cfg (Dir and Plugins; Builtins and SelfExe are kept from
// the running configuration when cfg leaves them empty): it rescans the
// plugin dir, starts new plugins at once, and replaces changed ones and
// stops removed ones once their running jobs finish. Running jobs are
// never interrupted. Reload returns before the launches end; Plugins shows
// their progress.
func (m *Manager) Reload(cfg Config) (ReloadReport, error) {
	if err := cfg.Validate(); err != nil {
		return ReloadReport{}, err
	}
	m.reloadMu.Lock()
	defer m.reloadMu.Unlock()
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ReloadReport{}, ErrClosed
	}
	old := m.cfg
	if cfg.Builtins == nil {
		cfg.Builtins, cfg.SelfExe = old.Builtins, old.SelfExe
	}
	cfg.Logger, cfg.KillGrace, cfg.StartTimeout = old.Logger, old.KillGrace, old.StartTimeout
	m.cfg = cfg
	m.mu.Unlock()

	var rep ReloadReport
	found := m.discover()
	seen := map[string]bool{}
	for _, inst := range found {
		seen[inst.name] = true
		m.mu.Lock()
		cur := m.instances[inst.name]
		if cur == nil {
			m.instances[inst.name] = inst
		}
		m.mu.Unlock()
		switch {
		case cur == nil:
			rep.Started = append(rep.Started, inst.name)
			m.launch(inst)
		case cur.sameAs(inst) && cur.State() != StateFailed:
			// unchanged
		default:
			rep.Restarted = append(rep.Restarted, inst.name)
			m.replaceWhenIdle(cur, inst)
		}
	}
	m.mu.Lock()
	var gone []*instance
	for name, inst := range m.instances {
		if !seen[name] {
			gone = append(gone, inst)
		}
	}
	m.mu.Unlock()
	for _, inst := range gone {
		rep.Removed = append(rep.Removed, inst.name)
		m.replaceWhenIdle(inst, nil)
	}
	slices.Sort(rep.Started)
	slices.Sort(rep.Restarted)
	slices.Sort(rep.Removed)
	return rep, nil
}

// launch starts inst in the background (unless it failed during discovery)
// and supervises it once it is up.
func (m *Manager) launch(inst *instance) {
	if inst.State() != StateStarting {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	m.supervisors.Go(func() {
		if inst.start(m.superCtx) {
			inst.supervise(m.superCtx)
		}
	})
}

// replaceWhenIdle drains cur (no new jobs), then, once its running jobs
// have finished, stops it and puts next in its place (next == nil removes
// the plugin). A plugin already draining gets the newer replacement.
func (m *Manager) replaceWhenIdle(cur, next *instance) {
	cur.mu.Lock()
	already := cur.draining
	cur.draining, cur.next = true, next
	if cur.state == StateReady || cur.state == StateRestarting {
		cur.state = StateDraining
	}
	if cur.idle == nil {
		cur.idle = make(chan struct{})
		if cur.running == 0 {
			close(cur.idle)
		}
	}
	idle := cur.idle
	cur.mu.Unlock()
	if already {
		return // the waiting goroutine picks up the new next
	}
	cur.logger.Info("plugin draining: it is replaced once its running jobs finish", "replacement", next != nil)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	m.supervisors.Go(func() {
		select {
		case <-idle:
		case <-m.superCtx.Done():
			return
		}
		cur.stop()
		cur.mu.Lock()
		next := cur.next
		cur.mu.Unlock()
		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			return
		}
		if m.instances[cur.name] == cur {
			if next != nil {
				m.instances[cur.name] = next
			} else {
				delete(m.instances, cur.name)
			}
		}
		m.mu.Unlock()
		if next != nil {
			cur.logger.Info("plugin idle: starting its replacement")
			m.launch(next)
		} else {
			cur.logger.Info("plugin idle: removed")
		}
	})
}

// sameAs reports whether other would run the same plugin the same way:
// same executable (by content), arguments and settings.
func (i *instance) sameAs(other *instance) bool {
	return i.path == other.path && slices.Equal(i.args, other.args) && i.builtin == other.builtin &&
		i.concurrency == other.concurrency && bytes.Equal(i.checksum, other.checksum) &&
		bytes.Equal(i.config, other.config) && i.fingerprint == other.fingerprint &&
		(i.state == StateSkipped) == (other.state == StateSkipped)
}

// fileFingerprint identifies an executable's content (sha256), so a
// reload notices a replaced binary; "" when it cannot be read.
func fileFingerprint(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return ""
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}
