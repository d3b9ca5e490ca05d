package sdk

import (
	"context"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
)

// watchdogInterval is how often the plugin checks that its host still lives.
const watchdogInterval = 250 * time.Millisecond

// Logger returns the plugin's own logger, for diagnostics that are not part
// of a job's log (use Reporter.Log for those). It is an hclog.Logger that
// writes every level, from TRACE up, as JSON lines to the plugin process's
// real stderr; the agent parses each line and logs it in its own log under
// the plugin's name at the line's level, so the agent's log_level decides
// what shows. It is the same logger on every call and safe for concurrent
// use. Never log to stdout: go-plugin uses it for the handshake.
func Logger() hclog.Logger { return stderrLogger() }

var stderrLogger = sync.OnceValue(func() hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Level:      hclog.Trace,
		Output:     os.Stderr, // captured now, before go-plugin swaps os.Stderr
		JSONFormat: true,
	})
})

// Serve serves w as a Corral worker plugin and exits the process when the
// host closes the plugin or dies. Call it from main; it does not return
// normally.
func Serve(w Worker) {
	logger := Logger()
	runs := newRunTracker()

	ctx, stop := context.WithCancel(context.Background())
	watchdogDone := make(chan struct{})
	go func() {
		defer close(watchdogDone)
		watchParent(ctx, os.Getppid(), func() {
			// Stop jobs (and their children) before logging: stderr may be
			// a broken pipe now, and writing to it can end the process.
			runs.shutdown(CancelGrace)
			logger.Error("host process is gone; exiting")
			os.Exit(ExitOrphaned)
		})
	}()

	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  Handshake,
		VersionedPlugins: versionedPlugins(w, runs, logger),
		GRPCServer:       plugin.DefaultGRPCServer,
		Logger:           logger,
	})

	stop()
	<-watchdogDone
	runs.shutdown(CancelGrace)
	os.Exit(0)
}

// watchParent calls orphaned once the parent process is no longer ppid
// (Linux and macOS re-parent orphans, so Getppid changes). It returns when
// ctx is done.
func watchParent(ctx context.Context, ppid int, orphaned func()) {
	t := time.NewTicker(watchdogInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if os.Getppid() != ppid {
				orphaned()
				return
			}
		}
	}
}

// runTracker gives every job a context that shutdown cancels, and lets
// shutdown wait for jobs to return.
type runTracker struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newRunTracker() *runTracker {
	ctx, cancel := context.WithCancel(context.Background())
	return &runTracker{ctx: ctx, cancel: cancel}
}

// begin derives a job context from parent that also ends on shutdown; call
// done when the job has returned.
func (t *runTracker) begin(parent context.Context) (ctx context.Context, done func()) {
	t.wg.Add(1)
	ctx, cancel := context.WithCancel(parent)
	stop := context.AfterFunc(t.ctx, cancel)
	return ctx, func() {
		stop()
		cancel()
		t.wg.Done()
	}
}

// shutdown cancels every job and waits up to grace for them to return.
func (t *runTracker) shutdown(grace time.Duration) {
	t.cancel()
	finished := make(chan struct{})
	// The waiter ends when the last job does; if that outlives grace the
	// process is about to exit anyway.
	go func() {
		t.wg.Wait()
		close(finished)
	}()
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-finished:
	case <-timer.C:
	}
}
