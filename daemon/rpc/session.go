package rpc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/hashicorp/yamux"
)

// errSessionClosed is the cause given for a session that died without a
// reason recorded on this side (peer gone, keepalive timeout, I/O error).
var errSessionClosed = errors.New("session closed")

// errDropped is the cause given for a session closed by Pool.Drop.
var errDropped = errors.New("session dropped by this node")

// session is one yamux session with a peer, client or server side.
type session struct {
	ys       *yamux.Session
	peer     string
	maxFrame int
	// reason records why this node closed the session, if it did.
	reason atomic.Pointer[error]
}

// gone reports whether the session is closed.
func (s *session) gone() bool { return s.ys.IsClosed() }

// closeFor closes the session, recording why.
func (s *session) closeFor(reason error) {
	s.reason.CompareAndSwap(nil, &reason)
	s.ys.Close()
}

// cause explains why the session is closed.
func (s *session) cause() error {
	if p := s.reason.Load(); p != nil {
		return *p
	}
	return errSessionClosed
}

// open opens a stream for method m whose life is bound to ctx. No frame is
// sent yet; every error matches ErrUnreachable.
func (s *session) open(ctx context.Context, m Method) (*Stream, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("rpc %s open %s: %w", m, s.peer, unreachable(err))
	}
	ys, err := s.ys.OpenStream()
	if err != nil {
		if s.gone() {
			err = s.cause()
		}
		return nil, fmt.Errorf("rpc %s open %s: %w", m, s.peer, unreachable(err))
	}
	st := newStream(ys, s, m, s.maxFrame)
	st.watchCtx(ctx)
	return st, nil
}

// start sends the open frame, followed in the same write by req when
// withReq is set. An error building the frames means nothing was sent and
// matches ErrUnreachable.
func (st *Stream) start(ctx context.Context, withReq bool, req any) error {
	of := openFrame{Method: st.method}
	if dl, ok := ctx.Deadline(); ok {
		of.Timeout = max(int64(time.Until(dl)), 1)
	}
	st.wmu.Lock()
	defer st.wmu.Unlock()
	var buildErr error
	err := st.f.writeFrames(st.conn, func(dst []byte) ([]byte, error) {
		dst, err := st.f.appendFrame(dst, kindOpen, &of)
		if err == nil && withReq {
			dst, err = st.f.appendFrame(dst, kindData, req)
		}
		buildErr = err
		return dst, err
	})
	if buildErr != nil {
		return fmt.Errorf("rpc %s to %s: %w", st.method, st.peer, unreachable(buildErr))
	}
	if err != nil {
		return st.ioErr("send", err)
	}
	return nil
}

// openStream opens a long-lived stream for m and sends its open frame.
func (s *session) openStream(ctx context.Context, m Method) (*Stream, error) {
	st, err := s.open(ctx, m)
	if err != nil {
		return nil, err
	}
	if err := st.start(ctx, false, nil); err != nil {
		st.Close()
		return nil, err
	}
	return st, nil
}

// call makes one request/response call on a new stream.
func (s *session) call(ctx context.Context, m Method, req, resp any) error {
	st, err := s.open(ctx, m)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.start(ctx, true, req); err != nil {
		return err
	}
	err = st.Recv(resp)
	if err == io.EOF {
		return fmt.Errorf("rpc %s recv %s: %w: stream ended without an answer", m, s.peer, ErrConnLost)
	}
	return err
}
