package host

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/corral-dev/corral/plugins/sdk"
)

// Restart backoff: restartBase doubling per consecutive crash, capped at
// restartMax. A plugin that stayed up for stableAfter starts over.
const (
	restartBase  = 250 * time.Millisecond
	restartMax   = 30 * time.Second
	stableAfter  = time.Minute
	watchEvery   = 250 * time.Millisecond
	crashConfirm = 2 * time.Second
)

// instance is one named plugin: its settings, its current process and its
// slots. The supervisor goroutine owns restarts.
type instance struct {
	name         string
	path         string
	args         []string
	builtin      bool
	concurrency  int
	checksum     []byte
	config       []byte
	startTimeout time.Duration
	killGrace    time.Duration
	procCtx      context.Context
	logger       hclog.Logger
	kick         chan struct{} // asks the supervisor to look now

	mu      sync.Mutex
	state   State
	err     string
	info    sdk.Info
	proc    *process // nil unless ready
	dead    *process // a process to replace, for the supervisor
	running int
	crashes int // consecutive
	// restarts counts successful relaunches after a crash.
	restarts int
	// fingerprint identifies the executable's content (see Reload).
	fingerprint string
	// draining is set by a reload that replaces or removes the plugin: it
	// takes no new jobs; idle is closed once none run; next replaces it.
	draining bool
	idle     chan struct{}
	next     *instance
	stopped  bool
}

// State returns the current state.
func (i *instance) State() State {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.state
}

// status returns a snapshot for listings.
func (i *instance) status() Status {
	i.mu.Lock()
	defer i.mu.Unlock()
	s := Status{
		Name:        i.name,
		Version:     i.info.Version,
		Description: i.info.Description,
		Path:        i.path,
		Builtin:     i.builtin,
		Status:      i.state,
		Error:       i.err,
		Concurrency: i.concurrency,
		Running:     i.running,
		Restarts:    i.restarts,
	}
	if i.proc != nil {
		s.PID = i.proc.pid
	}
	return s
}

// start performs the first launch and reports whether it succeeded.
func (i *instance) start(ctx context.Context) bool {
	proc, info, err := i.launch(ctx)
	i.mu.Lock()
	if err != nil {
		i.state, i.err = StateFailed, err.Error()
		i.mu.Unlock()
		i.logger.Error("plugin failed to start", "path", i.path, "error", err)
		return false
	}
	if i.stopped { // Close raced with Start
		i.mu.Unlock()
		proc.close()
		return false
	}
	i.setReadyLocked(proc, info)
	i.mu.Unlock()
	i.logger.Info("plugin ready", "version", info.Version, "pid", proc.pid, "concurrency", i.concurrency)
	return true
}

func (i *instance) setReadyLocked(proc *process, info sdk.Info) {
	i.state, i.err, i.info, i.proc = StateReady, "", info, proc
	if i.draining {
		i.state = StateDraining
	}
	if info.Name != "" && info.Name != i.name {
		i.logger.Debug("plugin reports another name; it is known by its file name", "reported", info.Name)
	}
}

// acquire takes a slot on the current process.
func (i *instance) acquire() (*process, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.state != StateReady || i.proc == nil {
		return nil, fmt.Errorf("%w: plugin %q is %s: %s", ErrNotReady, i.name, i.state, i.err)
	}
	if i.running >= i.concurrency {
		return nil, fmt.Errorf("%w: plugin %q runs %d jobs (concurrency %d)", ErrNoSlot, i.name, i.running, i.concurrency)
	}
	i.running++
	return i.proc, nil
}

// release returns a slot taken by acquire.
func (i *instance) release() {
	i.mu.Lock()
	i.running--
	if i.running == 0 && i.idle != nil {
		select {
		case <-i.idle:
		default:
			close(i.idle)
		}
	}
	i.mu.Unlock()
}

// poke asks the supervisor to check the process now.
func (i *instance) poke() {
	select {
	case i.kick <- struct{}{}:
	default:
	}
}

// kill ends proc at once (a hung call) and hands it to the supervisor.
func (i *instance) kill(proc *process, reason string) {
	i.logger.Warn("killing plugin process", "pid", proc.pid, "reason", reason)
	if proc.pid > 0 {
		_ = syscall.Kill(proc.pid, syscall.SIGKILL)
	}
	i.markDead(proc, fmt.Sprintf("plugin process (pid %d) killed: %s", proc.pid, reason))
}

// markDead records that proc is gone: the plugin stops taking jobs and the
// supervisor relaunches it. It is a no-op if proc is not the current process.
func (i *instance) markDead(proc *process, reason string) {
	i.mu.Lock()
	if i.proc == proc && i.state == StateReady {
		i.proc, i.dead = nil, proc
		i.state, i.err = StateRestarting, reason
	}
	i.mu.Unlock()
	i.poke()
}

// supervise watches the process and relaunches it with backoff when it
// exits. It returns when ctx ends.
func (i *instance) supervise(ctx context.Context) {
	t := time.NewTicker(watchEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-i.kick:
		}
		i.mu.Lock()
		proc, stopped := i.proc, i.stopped
		i.mu.Unlock()
		if stopped {
			return // replaced or removed by a reload
		}
		if proc != nil && proc.exited() {
			i.markDead(proc, fmt.Sprintf("plugin process (pid %d) exited unexpectedly", proc.pid))
		}
		i.mu.Lock()
		dead := i.dead
		i.dead = nil
		i.mu.Unlock()
		if dead != nil {
			i.restart(ctx, dead)
		}
	}
}

// restart relaunches the plugin with backoff until it is ready again or
// ctx ends.
func (i *instance) restart(ctx context.Context, dead *process) {
	dead.close() // reap and release go-plugin's resources
	i.mu.Lock()
	if time.Since(dead.started) >= stableAfter {
		i.crashes = 0
	}
	i.mu.Unlock()

	for {
		i.mu.Lock()
		i.crashes++
		delay := backoff(i.crashes)
		reason := i.err
		i.mu.Unlock()
		i.logger.Warn("restarting plugin", "attempt", i.crashes, "in", delay, "reason", reason)

		timer := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
		proc, info, err := i.launch(ctx)
		i.mu.Lock()
		if err == nil && !i.stopped {
			i.restarts++
			i.setReadyLocked(proc, info)
			i.mu.Unlock()
			i.logger.Info("plugin restarted", "pid", proc.pid)
			return
		}
		if err == nil { // stopping: do not keep the new process
			i.mu.Unlock()
			proc.close()
			return
		}
		i.err = "restart failed: " + err.Error()
		i.mu.Unlock()
		i.logger.Error("plugin restart failed", "error", err)
	}
}

// backoff is the delay before restart number n (1-based).
func backoff(n int) time.Duration {
	d := restartBase
	for range n - 1 {
		d *= 2
		if d >= restartMax {
			return restartMax
		}
	}
	return d
}

// stop ends the current process gracefully (go-plugin asks it to exit, then
// kills it after 2s) and prevents further restarts.
func (i *instance) stop() {
	i.mu.Lock()
	i.stopped = true
	proc := i.proc
	i.mu.Unlock()
	if proc != nil {
		proc.close()
	}
}
