package sdktest

import (
	"context"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	"github.com/corral-dev/corral/plugins/proto"
)

// session is the harness's side of a Session stream (protocol version 2):
// a reader goroutine routes the plugin's events to the calls by call ID.
type session struct {
	stream grpc.BidiStreamingClient[proto.SessionMessage, proto.SessionEvent]
	stop   context.CancelFunc
	sendMu sync.Mutex

	mu    sync.Mutex
	calls map[uint64]chan *proto.SessionEvent
	err   error         // why the stream ended
	done  chan struct{} // closed when it ended
}

func newSession(stream grpc.BidiStreamingClient[proto.SessionMessage, proto.SessionEvent], stop context.CancelFunc) *session {
	s := &session{stream: stream, stop: stop, calls: map[uint64]chan *proto.SessionEvent{}, done: make(chan struct{})}
	go s.read()
	return s
}

// read routes events until the stream ends.
func (s *session) read() {
	for {
		ev, err := s.stream.Recv()
		if err != nil {
			s.mu.Lock()
			s.err = err
			s.mu.Unlock()
			close(s.done)
			return
		}
		s.mu.Lock()
		ch := s.calls[ev.GetCallId()]
		s.mu.Unlock()
		if ch != nil {
			ch <- ev
		}
	}
}

func (s *session) send(msg *proto.SessionMessage) error {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	return s.stream.Send(msg)
}

// close ends the stream (the plugin then cancels any job still running).
func (s *session) close() {
	s.sendMu.Lock()
	_ = s.stream.CloseSend()
	s.sendMu.Unlock()
	s.stop()
	<-s.done
}

// run runs msg as call id and collects its events until the final one.
func (s *session) run(ctx context.Context, id uint64, msg *proto.RunRequest, grace time.Duration) Outcome {
	var out Outcome
	ch := make(chan *proto.SessionEvent, 64)
	s.mu.Lock()
	s.calls[id] = ch
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.calls, id)
		s.mu.Unlock()
	}()
	if err := s.send(&proto.SessionMessage{CallId: id, Msg: &proto.SessionMessage_Start{Start: msg}}); err != nil {
		out.Err = fmt.Errorf("%w: sending the job: %v", ErrCrashed, err)
		return out
	}
	cancelled := ctx.Done()
	var giveUp <-chan time.Time
	if msg.GetTimeoutMs() > 0 {
		giveUp = time.After(time.Duration(msg.GetTimeoutMs())*time.Millisecond + grace)
	}
	for {
		select {
		case ev := <-ch:
			if out.add(ev.GetLog(), ev.GetProgress(), ev.GetResult(), ev.GetError()) {
				return out
			}
		case <-cancelled:
			out.Cancelled = true
			cancelled = nil
			giveUp = time.After(grace)
			if err := s.send(&proto.SessionMessage{CallId: id, Msg: &proto.SessionMessage_Cancel{Cancel: &proto.Cancel{}}}); err != nil {
				out.Err = fmt.Errorf("%w: sending the cancel: %v", ErrCrashed, err)
				return out
			}
		case <-giveUp:
			out.Err = fmt.Errorf("%w within %s of its cancel or timeout", ErrNoAnswer, grace)
			return out
		case <-s.done:
			// Events sent before the end may still be queued.
			for {
				select {
				case ev := <-ch:
					if out.add(ev.GetLog(), ev.GetProgress(), ev.GetResult(), ev.GetError()) {
						return out
					}
				default:
					s.mu.Lock()
					err := s.err
					s.mu.Unlock()
					out.Err = fmt.Errorf("%w: the session ended: %s", ErrCrashed, status.Convert(err).Message())
					return out
				}
			}
		}
	}
}
