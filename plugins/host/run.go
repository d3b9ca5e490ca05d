package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"google.golang.org/grpc/status"

	"github.com/corral-dev/corral/plugins/proto"
)

// RunRequest is one job attempt for Manager.Run.
type RunRequest struct {
	JobID   string
	Attempt int
	Queue   string
	Payload []byte
	// Timeout bounds the attempt (0: none). The plugin's context expires
	// at Timeout; a plugin still running KillGrace later is killed.
	Timeout time.Duration
}

// Reporter receives a running job's log lines and progress. Its methods are
// called from the goroutine that called Manager.Run.
type Reporter interface {
	// Log receives one line of the job's output; stream is "stdout",
	// "stderr" or "plugin".
	Log(stream, line string)
	// Progress receives percent done (0..100) and a message.
	Progress(percent float64, msg string)
}

// discard is the Reporter used when Run gets nil.
type discard struct{}

func (discard) Log(string, string)       {}
func (discard) Progress(float64, string) {}

// Causes of a cancelled call stream.
var (
	errCallerCancelled = errors.New("caller cancelled")
	errCallHung        = errors.New("call outlived its timeout")
)

// Run runs one job attempt in the named plugin, streaming its logs and
// progress to r (which may be nil), and returns the plugin's result.
//
// It takes one of the plugin's concurrency slots and fails with ErrNoSlot
// when none is free. Errors: *JobError when the plugin's Run failed;
// ErrUnknownPlugin, ErrNotReady, ErrNoSlot before the call; ErrTimeout,
// ErrCancelled (ctx ended) and ErrCrashed (the plugin process died, it is
// restarted) during it. A call still running KillGrace after its timeout is
// killed together with its plugin process.
func (m *Manager) Run(ctx context.Context, plugin string, req RunRequest, r Reporter) ([]byte, error) {
	inst, err := m.lookup(plugin)
	if err != nil {
		return nil, err
	}
	proc, err := inst.acquire()
	if err != nil {
		return nil, err
	}
	defer inst.release()
	if r == nil {
		r = discard{}
	}
	if proc.sess != nil {
		return inst.callSession(ctx, proc, req, r)
	}
	return inst.call(ctx, proc, req, r)
}

// call runs req on proc with a Run stream of its own (protocol version 1). The stream's context is ours, not the caller's:
// a caller cancel cancels it at once, but a timeout first lets the plugin
// end the call itself (it knows the timeout), so a hung call can be told
// from a slow one.
func (i *instance) call(ctx context.Context, proc *process, req RunRequest, r Reporter) ([]byte, error) {
	start := time.Now()
	sctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	defer cancel(nil)
	stop := context.AfterFunc(ctx, func() { cancel(errCallerCancelled) })
	defer stop()
	if req.Timeout > 0 {
		hung := time.AfterFunc(req.Timeout+i.killGrace, func() { cancel(errCallHung) })
		defer hung.Stop()
	}

	stream, err := proc.rpc.Run(sctx, &proto.RunRequest{
		JobId:     req.JobID,
		Attempt:   uint32(max(req.Attempt, 0)),
		Queue:     req.Queue,
		Payload:   req.Payload,
		TimeoutMs: timeoutMs(req.Timeout),
	})
	if err != nil {
		return nil, i.callError(ctx, sctx, proc, req, err)
	}
	for {
		ev, err := stream.Recv()
		if err != nil {
			return nil, i.callError(ctx, sctx, proc, req, err)
		}
		switch e := ev.GetEvent().(type) {
		case *proto.RunEvent_Log:
			r.Log(e.Log.GetStream(), e.Log.GetLine())
		case *proto.RunEvent_Progress:
			r.Progress(e.Progress.GetPercent(), e.Progress.GetMessage())
		case *proto.RunEvent_Result:
			return e.Result.GetData(), nil
		case *proto.RunEvent_Error:
			return nil, i.jobError(ctx, start, req, e.Error)
		}
	}
}

// jobError maps the plugin's error event for a call begun at start: a
// plugin that gave up because its timeout passed or the caller cancelled
// reports that, not a job failure.
func (i *instance) jobError(ctx context.Context, start time.Time, req RunRequest, e *proto.Error) error {
	if req.Timeout > 0 && time.Since(start) >= req.Timeout {
		return fmt.Errorf("%w after %s: %s", ErrTimeout, req.Timeout, e.GetMessage())
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%w: %w", ErrCancelled, ctx.Err())
	}
	return &JobError{Message: e.GetMessage(), NonRetryable: e.GetNonRetryable()}
}

// callError maps a failed stream onto the package's errors.
func (i *instance) callError(ctx, sctx context.Context, proc *process, req RunRequest, err error) error {
	switch context.Cause(sctx) {
	case errCallerCancelled:
		return fmt.Errorf("%w: %w", ErrCancelled, ctx.Err())
	case errCallHung:
		i.kill(proc, fmt.Sprintf("job %s did not stop within %s of its timeout", req.JobID, i.killGrace))
		return fmt.Errorf("%w after %s; the plugin did not stop within %s and was killed and restarted",
			ErrTimeout, req.Timeout, i.killGrace)
	}
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: plugin %q ended job %s without a result", ErrCrashed, i.name, req.JobID)
	}
	if i.waitExited(proc) {
		i.markDead(proc, fmt.Sprintf("plugin process (pid %d) exited unexpectedly during job %s", proc.pid, req.JobID))
		return fmt.Errorf("%w: plugin %q (pid %d) exited during job %s", ErrCrashed, i.name, proc.pid, req.JobID)
	}
	return fmt.Errorf("%w: plugin %q: %s", ErrCrashed, i.name, status.Convert(err).Message())
}

// waitExited waits briefly for proc to be seen as exited: a broken stream
// usually means the process is dying.
func (i *instance) waitExited(proc *process) bool {
	deadline := time.Now().Add(crashConfirm)
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for !proc.exited() {
		if time.Now().After(deadline) {
			return false
		}
		<-t.C
	}
	return true
}

// timeoutMs is the timeout the plugin is told, in whole milliseconds,
// rounded up: a timeout under 1ms must never reach the plugin as 0 ("no
// timeout"), or the plugin would run on until it is killed.
func timeoutMs(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Millisecond - 1) / time.Millisecond)
}
