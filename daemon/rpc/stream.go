package rpc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/yamux"
)

// Stream is one bidirectional exchange of messages with a peer: a stream a
// client opened with Pool.Open or Server.Local, or the server side a
// StreamHandler receives.
//
// One goroutine may Send while another Recvs; concurrent Sends (or
// concurrent Recvs) are serialised. Messages are any values the msgpack
// codec handles (structs with exported fields, []byte, maps, ...); Recv needs
// a pointer.
type Stream struct {
	conn   *yamux.Stream
	sess   *session
	method Method
	peer   string

	wmu sync.Mutex
	rmu sync.Mutex
	f   *framer

	// stopCtx unregisters the ctx watch of a client stream.
	stopCtx func() bool
	// ctxErr is set when the stream was aborted because its ctx ended.
	ctxErr atomic.Pointer[error]
	// closed is set by Close.
	closed atomic.Bool
	// remote is the error frame that ended the stream, once received.
	remote atomic.Pointer[RemoteError]
}

// newStream wraps an open yamux stream.
func newStream(conn *yamux.Stream, sess *session, m Method, maxFrame int) *Stream {
	return &Stream{
		conn:   conn,
		sess:   sess,
		method: m,
		peer:   sess.peer,
		f:      newFramer(conn, maxFrame),
	}
}

// Method returns the stream's method.
func (s *Stream) Method() Method { return s.method }

// Peer returns the peer's address: the dialed address for a client stream,
// the remote address of the connection for a server stream, and "local" for
// in-process streams.
func (s *Stream) Peer() string { return s.peer }

// Send writes one message. It blocks while the peer's receive window is full
// (the peer is not reading); ctx cancellation or Close unblocks it. After the
// peer ended the stream with an error, Send may still succeed; the error is
// returned by Recv.
func (s *Stream) Send(v any) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.aborted("send"); err != nil {
		return err
	}
	err := s.f.writeFrames(s.conn, func(dst []byte) ([]byte, error) {
		return s.f.appendFrame(dst, kindData, v)
	})
	if err != nil {
		return s.ioErr("send", err)
	}
	return nil
}

// Recv reads the next message into v (a pointer; nil discards it). It
// returns io.EOF when the peer ended the stream cleanly, a RemoteError when
// the peer ended it with an error (and the same error on every later call),
// and otherwise an error classified as the package documentation describes.
func (s *Stream) Recv(v any) error {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	if re := s.remote.Load(); re != nil {
		return re
	}
	if err := s.aborted("recv"); err != nil {
		return err
	}
	kind, body, err := s.f.readFrame()
	defer s.f.release()
	if err != nil {
		return s.ioErr("recv", err)
	}
	// A frame read while Close or ctx raced with it is not delivered: once
	// either happened, Recv reports it.
	if err := s.aborted("recv"); err != nil {
		return err
	}
	switch kind {
	case kindData:
		return s.f.decode(body, v)
	case kindError:
		var we wireError
		if err := s.f.decode(body, &we); err != nil {
			return err
		}
		re := &RemoteError{Code: we.Code, Message: we.Message}
		s.remote.Store(re)
		return re
	default:
		return fmt.Errorf("%w: unexpected %s frame", ErrBadFrame, kind)
	}
}

// CloseSend tells the peer this side will send nothing more (the peer's Recv
// returns io.EOF); Recv keeps working.
func (s *Stream) CloseSend() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.conn.Close()
}

// Close ends the stream in both directions: blocked Send and Recv calls
// return ErrClosed, and the peer sees the end of the stream. Close is safe to
// call more than once and concurrently with Send and Recv.
func (s *Stream) Close() error {
	if s.stopCtx != nil {
		s.stopCtx()
	}
	if s.closed.Swap(true) {
		return nil
	}
	s.abort()
	return nil
}

// abort wakes blocked reads and writes and half-closes the yamux stream. The
// yamux stream is freed once the peer closes its side (or after
// Config.StreamCloseTimeout).
func (s *Stream) abort() {
	past := time.Unix(1, 0)
	s.conn.SetDeadline(past)
	s.conn.Close()
}

// watchCtx aborts the stream when ctx ends, until Close.
func (s *Stream) watchCtx(ctx context.Context) {
	if ctx.Done() == nil {
		return
	}
	s.stopCtx = context.AfterFunc(ctx, func() {
		err := context.Cause(ctx)
		s.ctxErr.Store(&err)
		s.abort()
	})
}

// aborted returns the error for a stream this side closed or whose ctx
// ended, or nil.
func (s *Stream) aborted(op string) error {
	if p := s.ctxErr.Load(); p != nil {
		return fmt.Errorf("rpc %s %s %s: %w", s.method, op, s.peer, *p)
	}
	if s.closed.Load() {
		return fmt.Errorf("rpc %s %s %s: stream %w", s.method, op, s.peer, ErrClosed)
	}
	return nil
}

// ioErr classifies an I/O error on the stream, in the order that explains
// it best: our ctx, our Close, a dead or dropped session, the peer, framing.
func (s *Stream) ioErr(op string, err error) error {
	if err := s.aborted(op); err != nil {
		return err
	}
	if s.sess.gone() {
		return fmt.Errorf("rpc %s %s %s: %w: %w", s.method, op, s.peer, ErrConnLost, s.sess.cause())
	}
	switch {
	case err == io.EOF && op == "recv":
		return io.EOF
	case errors.Is(err, ErrFrameTooLarge), errors.Is(err, ErrBadFrame):
		return fmt.Errorf("rpc %s %s %s: %w", s.method, op, s.peer, err)
	case errors.Is(err, yamux.ErrConnectionReset), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, yamux.ErrStreamClosed), errors.Is(err, io.EOF):
		return fmt.Errorf("rpc %s %s %s: %w: %w", s.method, op, s.peer, ErrConnLost, err)
	case errors.Is(err, os.ErrDeadlineExceeded), isTimeout(err):
		return fmt.Errorf("rpc %s %s %s: %w: %w", s.method, op, s.peer, ErrConnLost, err)
	}
	return fmt.Errorf("rpc %s %s %s: %w", s.method, op, s.peer, err)
}

// isTimeout reports whether err is a net.Error timeout.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
