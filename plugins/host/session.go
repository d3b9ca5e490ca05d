package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	"github.com/corral-dev/corral/plugins/proto"
)

// maxMessage bounds one gRPC message in either direction: gRPC's default
// receive limit, which a Session message must not exceed or the whole
// session (every job of the process) would fail.
const maxMessage = 4 << 20

// sessionStream is the host side of a Session RPC.
type sessionStream = grpc.BidiStreamingClient[proto.SessionMessage, proto.SessionEvent]

// session multiplexes the job calls of one plugin process (protocol
// version 2) over its Session stream. A dispatcher goroutine, stopped by
// close or by the stream's end, routes the plugin's events to the calls.
type session struct {
	stream sessionStream
	cancel context.CancelFunc
	// done is closed when the stream has ended; err then says why.
	done chan struct{}
	err  error
	// exited is closed when the dispatcher has returned.
	exited chan struct{}

	sendMu sync.Mutex // gRPC streams are not safe for concurrent Send

	mu      sync.Mutex
	calls   map[uint64]*sessionCall
	lastID  uint64
	closing bool
}

// openSession opens worker's Session and starts its dispatcher. ended is
// called (from the dispatcher) when the stream ends other than by close.
func openSession(worker proto.WorkerClient, ended func(error)) (*session, error) {
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := worker.Session(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	s := &session{
		stream: stream,
		cancel: cancel,
		done:   make(chan struct{}),
		exited: make(chan struct{}),
		calls:  make(map[uint64]*sessionCall),
	}
	go s.dispatch(ended)
	return s, nil
}

// dispatch routes events to their calls until the stream ends.
func (s *session) dispatch(ended func(error)) {
	defer close(s.exited)
	for {
		ev, err := s.stream.Recv()
		if err != nil {
			s.mu.Lock()
			s.err = err
			closing := s.closing
			s.mu.Unlock()
			close(s.done)
			if !closing && ended != nil {
				ended(err)
			}
			return
		}
		s.mu.Lock()
		c := s.calls[ev.GetCallId()]
		s.mu.Unlock()
		if c != nil {
			c.push(ev)
		}
	}
}

// close ends the stream and waits for the dispatcher; calls still waiting
// see the session end.
func (s *session) close() {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	s.cancel()
	<-s.exited
}

// start registers a call and sends its start message. An error means
// the call could not be sent and the session is still usable.
func (s *session) start(req RunRequest) (*sessionCall, error) {
	if len(req.Payload) > maxMessage-64<<10 {
		return nil, fmt.Errorf("payload of %d bytes is too large for the plugin protocol (limit %d)", len(req.Payload), maxMessage-64<<10)
	}
	c := &sessionCall{ready: make(chan struct{}, 1)}
	s.mu.Lock()
	s.lastID++
	c.id = s.lastID
	s.calls[c.id] = c
	s.mu.Unlock()
	err := s.send(&proto.SessionMessage{CallId: c.id, Msg: &proto.SessionMessage_Start{Start: &proto.RunRequest{
		JobId:     req.JobID,
		Attempt:   uint32(max(req.Attempt, 0)),
		Queue:     req.Queue,
		Payload:   req.Payload,
		TimeoutMs: timeoutMs(req.Timeout),
	}}})
	// io.EOF: the stream has ended; the dispatcher reports why on done.
	if err != nil && !errors.Is(err, io.EOF) {
		s.forget(c)
		return nil, err
	}
	return c, nil
}

// cancelCall asks the plugin to cancel call c; the plugin still sends its
// final event, which nobody waits for any more.
func (s *session) cancelCall(c *sessionCall) {
	_ = s.send(&proto.SessionMessage{CallId: c.id, Msg: &proto.SessionMessage_Cancel{Cancel: &proto.Cancel{}}})
}

// forget drops c: later events for it are discarded.
func (s *session) forget(c *sessionCall) {
	s.mu.Lock()
	delete(s.calls, c.id)
	s.mu.Unlock()
}

func (s *session) send(msg *proto.SessionMessage) error {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	return s.stream.Send(msg)
}

// maxQueuedLogs bounds the log lines queued for one call; beyond it lines
// are dropped (and counted) so a plugin that logs faster than its Reporter
// stores cannot grow the host's memory without bound.
const maxQueuedLogs = 10000

// sessionCall is one job call on a session: the events the dispatcher has
// queued for it. The queue does not block, so that a slow Reporter never
// stalls the other calls of the process; only log lines are bounded.
type sessionCall struct {
	id    uint64
	ready chan struct{} // signalled (1-buffered) when events were queued

	mu      sync.Mutex
	events  []*proto.SessionEvent
	logs    int // log events in events
	dropped int // log lines dropped since the last take
}

func (c *sessionCall) push(ev *proto.SessionEvent) {
	c.mu.Lock()
	if _, isLog := ev.GetEvent().(*proto.SessionEvent_Log); isLog {
		if c.logs >= maxQueuedLogs {
			c.dropped++
			c.mu.Unlock()
			return
		}
		c.logs++
	}
	c.events = append(c.events, ev)
	c.mu.Unlock()
	select {
	case c.ready <- struct{}{}:
	default:
	}
}

// take returns and clears the queued events, and how many log lines were
// dropped meanwhile.
func (c *sessionCall) take() ([]*proto.SessionEvent, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	evs, dropped := c.events, c.dropped
	c.events, c.logs, c.dropped = nil, 0, 0
	return evs, dropped
}

// callSession runs req on proc's session. A caller cancel sends a cancel
// at once; a timeout first lets the plugin end the call itself (it knows
// the timeout), and a call still running KillGrace later is killed together
// with its process.
func (i *instance) callSession(ctx context.Context, proc *process, req RunRequest, r Reporter) ([]byte, error) {
	start := time.Now()
	sess := proc.sess
	c, err := sess.start(req)
	if err != nil {
		return nil, fmt.Errorf("%w: plugin %q: job %s: %s", ErrCrashed, i.name, req.JobID, status.Convert(err).Message())
	}
	defer sess.forget(c)
	var hung <-chan time.Time
	if req.Timeout > 0 {
		t := time.NewTimer(req.Timeout + i.killGrace)
		defer t.Stop()
		hung = t.C
	}
	// handle delivers queued events and reports whether the call ended.
	handle := func() ([]byte, error, bool) {
		evs, dropped := c.take()
		if dropped > 0 {
			r.Log("plugin", fmt.Sprintf("[corral: %d log lines dropped: the plugin logged faster than they could be stored]", dropped))
		}
		for _, ev := range evs {
			switch e := ev.GetEvent().(type) {
			case *proto.SessionEvent_Log:
				r.Log(e.Log.GetStream(), e.Log.GetLine())
			case *proto.SessionEvent_Progress:
				r.Progress(e.Progress.GetPercent(), e.Progress.GetMessage())
			case *proto.SessionEvent_Result:
				return e.Result.GetData(), nil, true
			case *proto.SessionEvent_Error:
				return nil, i.jobError(ctx, start, req, e.Error), true
			}
		}
		return nil, nil, false
	}
	for {
		select {
		case <-c.ready:
			if res, err, ok := handle(); ok {
				return res, err
			}
		case <-ctx.Done():
			sess.cancelCall(c)
			return nil, fmt.Errorf("%w: %w", ErrCancelled, ctx.Err())
		case <-hung:
			i.kill(proc, fmt.Sprintf("job %s did not stop within %s of its timeout", req.JobID, i.killGrace))
			return nil, fmt.Errorf("%w after %s; the plugin did not stop within %s and was killed and restarted",
				ErrTimeout, req.Timeout, i.killGrace)
		case <-sess.done:
			// Events the plugin sent before the stream ended still count.
			if res, err, ok := handle(); ok {
				return res, err
			}
			return nil, i.sessionLost(proc, req, sess.err)
		}
	}
}

// sessionLost is the error of a call whose session ended under it.
func (i *instance) sessionLost(proc *process, req RunRequest, err error) error {
	if i.waitExited(proc) {
		i.markDead(proc, fmt.Sprintf("plugin process (pid %d) exited unexpectedly during job %s", proc.pid, req.JobID))
		return fmt.Errorf("%w: plugin %q (pid %d) exited during job %s", ErrCrashed, i.name, proc.pid, req.JobID)
	}
	return fmt.Errorf("%w: plugin %q: job session ended during job %s: %s", ErrCrashed, i.name, req.JobID, status.Convert(err).Message())
}

// sessionEnded handles a session that ended while its process was in use:
// a process without a session cannot run jobs, so it is restarted (killed
// first if it is still running).
func (i *instance) sessionEnded(proc *process, err error) {
	if i.waitExited(proc) {
		i.markDead(proc, fmt.Sprintf("plugin process (pid %d) exited unexpectedly", proc.pid))
		return
	}
	i.kill(proc, "its job session ended: "+status.Convert(err).Message())
}
