package sdk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/corral-dev/corral/plugins/proto"
)

// Limits that keep every Session message under gRPC's default 4 MiB
// receive limit: one oversized message would end the session, and with it
// every job of the process.
const (
	maxResultBytes = 4<<20 - 64<<10
	maxLogLine     = 1 << 20
)

// sessionStream is the plugin side of a Session RPC.
type sessionStream = grpc.BidiStreamingServer[proto.SessionMessage, proto.SessionEvent]

// Session implements proto.WorkerServer (protocol version 2): it reads the
// host's start and cancel messages and runs each started job on a goroutine
// of its own (reused by later jobs), sending the jobs' events back tagged
// with their call IDs. It
// returns when the host ends the stream; every job still running is then
// cancelled.
func (s *server) Session(stream sessionStream) error {
	if s.api < 2 {
		return status.Errorf(codes.Unimplemented, "worker API version %d has no Session", s.api)
	}
	ss := &session{srv: s, stream: stream, calls: make(map[uint64]context.CancelFunc)}
	for {
		msg, err := stream.Recv()
		if err != nil {
			ss.end()
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		switch m := msg.GetMsg().(type) {
		case *proto.SessionMessage_Start:
			ss.start(msg.GetCallId(), m.Start)
		case *proto.SessionMessage_Cancel:
			ss.cancel(msg.GetCallId())
		}
	}
}

// session is the plugin side of one Session stream. Its jobs' goroutines
// are tracked by the server's runTracker (and stopped by their contexts);
// the Session handler owns the stream.
type session struct {
	srv    *server
	stream sessionStream

	// sendMu serialises Send: gRPC streams are not safe for concurrent
	// Send. ended is set once the handler returns; later sends are dropped.
	sendMu sync.Mutex
	ended  bool

	mu    sync.Mutex
	calls map[uint64]context.CancelFunc // running jobs by call ID
}

// start runs req as call id on a runner goroutine of its own.
func (ss *session) start(id uint64, req *proto.RunRequest) {
	ctx, done := ss.srv.runs.begin(ss.stream.Context())
	var cancel context.CancelFunc
	if ms := req.GetTimeoutMs(); ms > 0 {
		ctx, cancel = context.WithTimeout(ctx, time.Duration(ms)*time.Millisecond)
	} else {
		ctx, cancel = context.WithCancel(ctx)
	}
	ss.mu.Lock()
	ss.calls[id] = cancel
	ss.mu.Unlock()

	job := jobOf(req)
	rep := &sessionReporter{ss: ss, id: id}
	ss.srv.runners.Run(func() {
		stopWatch := ss.srv.watchHung(ctx, job.ID)
		out := ss.srv.runWorker(ctx, job, rep)
		stopWatch()
		rep.finish(out)
		ss.mu.Lock()
		delete(ss.calls, id)
		ss.mu.Unlock()
		cancel()
		done()
	})
}

// cancel cancels call id's context, if it still runs.
func (ss *session) cancel(id uint64) {
	ss.mu.Lock()
	cancel := ss.calls[id]
	ss.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// end stops sending (the handler is returning) and cancels every job.
func (ss *session) end() {
	ss.sendMu.Lock()
	ss.ended = true
	ss.sendMu.Unlock()
	ss.mu.Lock()
	for _, cancel := range ss.calls {
		cancel()
	}
	ss.mu.Unlock()
}

// watchHung exits the process with ExitHung if the job is still running
// CancelGrace after ctx ends. Call the returned stop once the job's Run has
// returned. No goroutine is spent on jobs whose context does not end first.
func (s *server) watchHung(ctx context.Context, jobID string) (stop func()) {
	returned := make(chan struct{})
	stopAfter := context.AfterFunc(ctx, func() {
		t := time.NewTimer(CancelGrace)
		defer t.Stop()
		select {
		case <-returned:
		case <-t.C:
			s.logger.Error("job ignored cancellation; exiting so the host restarts the plugin",
				"job", jobID, "grace", CancelGrace)
			os.Exit(ExitHung)
		}
	})
	return func() {
		stopAfter()
		close(returned)
	}
}

// sessionReporter sends one call's Reporter calls as SessionEvents.
type sessionReporter struct {
	ss *session
	id uint64
	// finished is set (under ss.sendMu) once the final event is sent.
	finished bool
}

// send sends ev unless the call has finished or the session ended.
func (r *sessionReporter) send(ev *proto.SessionEvent, final bool) {
	ev.CallId = r.id
	r.ss.sendMu.Lock()
	defer r.ss.sendMu.Unlock()
	if r.finished || r.ss.ended {
		return
	}
	r.finished = final
	// A failed Send means the stream is gone; the handler sees that on Recv.
	_ = r.ss.stream.Send(ev)
}

// Log implements Reporter.
func (r *sessionReporter) Log(line string) { r.Output(StreamPlugin, line) }

// Logf implements Reporter.
func (r *sessionReporter) Logf(format string, args ...any) { r.Log(fmt.Sprintf(format, args...)) }

// Output implements Reporter.
func (r *sessionReporter) Output(stream Stream, line string) {
	if len(line) > maxLogLine {
		line = line[:maxLogLine] + " [truncated]"
	}
	r.send(&proto.SessionEvent{Event: &proto.SessionEvent_Log{
		Log: &proto.Log{Stream: stream.String(), Line: line},
	}}, false)
}

// Progress implements Reporter.
func (r *sessionReporter) Progress(percent float64, msg string) {
	percent = max(0, min(100, percent))
	r.send(&proto.SessionEvent{Event: &proto.SessionEvent_Progress{
		Progress: &proto.Progress{Percent: percent, Message: msg},
	}}, false)
}

// finish sends the call's final event; later Reporter calls are dropped.
func (r *sessionReporter) finish(out outcome) {
	if out.err == nil && len(out.result) > maxResultBytes {
		out.err = NonRetryable(fmt.Errorf("result of %d bytes exceeds the plugin protocol's limit of %d bytes", len(out.result), maxResultBytes))
	}
	ev := &proto.SessionEvent{}
	if out.err != nil {
		ev.Event = &proto.SessionEvent_Error{Error: &proto.Error{
			Message:      out.err.Error(),
			NonRetryable: IsNonRetryable(out.err),
		}}
	} else {
		ev.Event = &proto.SessionEvent_Result{Result: &proto.Result{Data: out.result}}
	}
	r.send(ev, true)
}
