package rpc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime/debug"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/yamux"
)

// StreamHandler serves one stream. ctx is cancelled when the peer's session
// goes away, when the Server closes, or when the caller's deadline passes.
// A nil return ends the stream cleanly (the caller's Recv sees io.EOF); an
// error is sent to the caller as an error frame (see RegisterError). The
// handler must return soon after ctx is cancelled: Server.Close and
// Mux.Close wait for it. The caller closing its side shows up only in Recv
// (io.EOF, or an error if it aborted), so a handler that mostly sends should
// keep a Recv running to notice it.
type StreamHandler func(ctx context.Context, s *Stream) error

// Server serves the streams of RPC sessions (from a Mux, and in-process
// through Local) with the handlers registered by Handle.
type Server struct {
	cfg    Config
	logger hclog.Logger

	ctx    context.Context
	cancel context.CancelFunc

	hmu      sync.RWMutex
	handlers map[Method]StreamHandler

	mu       sync.Mutex
	closed   bool
	sessions map[*session]struct{}
	local    *session
	wg       sync.WaitGroup
}

// Ping is the request and the answer of MethodPing.
type Ping struct{}

// NewServer returns a Server whose only handler is the built-in
// MethodPing, which answers a Ping with a Ping.
func NewServer(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg:      cfg,
		logger:   cfg.logger(),
		ctx:      ctx,
		cancel:   cancel,
		handlers: map[Method]StreamHandler{},
		sessions: map[*session]struct{}{},
	}
	s.Handle(MethodPing, Unary(func(context.Context, *Ping) (*Ping, error) { return &Ping{}, nil }))
	return s, nil
}

// Handle registers h for method m. It may be called while the server is
// serving; a stream for m opened before that gets ErrUnknownMethod. Handle
// panics on MethodInvalid, a nil handler, or a method registered twice
// (MethodPing is registered by NewServer).
func (s *Server) Handle(m Method, h StreamHandler) {
	if m == MethodInvalid || h == nil {
		panic("rpc: Handle needs a valid method and a handler")
	}
	s.hmu.Lock()
	defer s.hmu.Unlock()
	if _, ok := s.handlers[m]; ok {
		panic(fmt.Sprintf("rpc: method %s registered twice", m))
	}
	s.handlers[m] = h
}

// handler returns the handler for m, or nil.
func (s *Server) handler(m Method) StreamHandler {
	s.hmu.RLock()
	defer s.hmu.RUnlock()
	return s.handlers[m]
}

// Unary adapts a request/response function to a StreamHandler: it reads one
// Req, calls fn, and sends the *Resp or fn's error. fn's ctx is also
// cancelled when the caller abandons the call (ctx cancelled, Pool.Drop).
func Unary[Req, Resp any](fn func(ctx context.Context, req *Req) (*Resp, error)) StreamHandler {
	return func(ctx context.Context, s *Stream) error {
		req := new(Req)
		if err := s.Recv(req); err != nil {
			return err
		}
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stop := s.watchPeer(cancel)
		resp, err := fn(ctx, req)
		stop()
		if err != nil {
			return err
		}
		return s.Send(resp)
	}
}

// watchPeer calls abandoned when the peer sends anything more or closes its
// side, which a unary caller only does when it gives up. The returned
// function stops the watch and waits for it.
func (s *Stream) watchPeer(abandoned func()) (stop func()) {
	done := make(chan struct{})
	var stopping sync.Mutex
	stopped := false
	go func() {
		defer close(done)
		var b [1]byte
		s.conn.Read(b[:])
		stopping.Lock()
		defer stopping.Unlock()
		if !stopped {
			abandoned()
		}
	}()
	return func() {
		stopping.Lock()
		stopped = true
		stopping.Unlock()
		s.conn.SetReadDeadline(time.Unix(1, 0))
		<-done
		s.conn.SetReadDeadline(time.Time{})
	}
}

// Local opens a stream for m to this server's own handler, in-process: a
// yamux session over net.Pipe, with the same framing and semantics as
// Pool.Open. ctx governs the stream's whole life.
func (s *Server) Local(ctx context.Context, m Method) (*Stream, error) {
	sess, err := s.localSession()
	if err != nil {
		return nil, fmt.Errorf("rpc %s open local: %w", m, err)
	}
	return sess.openStream(ctx, m)
}

// LocalCall is Pool.Call to this server's own handler, in-process.
func (s *Server) LocalCall(ctx context.Context, m Method, req, resp any) error {
	sess, err := s.localSession()
	if err != nil {
		return fmt.Errorf("rpc %s call local: %w", m, err)
	}
	return sess.call(ctx, m, req, resp)
}

// localSession returns the in-process session, creating it on first use
// and after it died.
func (s *Server) localSession() (*session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, unreachable(fmt.Errorf("server %w", ErrClosed))
	}
	if s.local != nil && !s.local.gone() {
		return s.local, nil
	}
	pipe, server := net.Pipe()
	client := batch(pipe)
	ys, err := yamux.Client(client, s.cfg.yamuxConfig(s.logger, false))
	if err != nil {
		client.Close()
		server.Close()
		return nil, unreachable(err)
	}
	ss, err := s.newSession(server, "local", false)
	if err != nil {
		ys.Close()
		return nil, unreachable(err)
	}
	s.trackLocked(ss)
	go s.serveSession(ss)
	s.local = &session{ys: ys, peer: "local", maxFrame: s.cfg.MaxFrameBytes}
	return s.local, nil
}

// newSession starts a yamux server session on conn.
func (s *Server) newSession(conn net.Conn, peer string, keepAlive bool) (*session, error) {
	conn = batch(conn)
	ys, err := yamux.Server(conn, s.cfg.yamuxConfig(s.logger, keepAlive))
	if err != nil {
		conn.Close()
		return nil, err
	}
	return &session{ys: ys, peer: peer, maxFrame: s.cfg.MaxFrameBytes}, nil
}

// trackLocked records a session so Close can end it; s.mu is held and the
// server is open.
func (s *Server) trackLocked(ss *session) {
	s.sessions[ss] = struct{}{}
	s.wg.Add(1)
}

// serveConn serves an RPC connection handed over by a Mux until the session
// ends. It returns at once, closing conn, when the server is closed.
func (s *Server) serveConn(conn net.Conn) {
	ss, err := s.newSession(conn, conn.RemoteAddr().String(), true)
	if err != nil {
		s.logger.Error("cannot start rpc session", "remote", conn.RemoteAddr(), "error", err)
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ss.closeFor(ErrClosed)
		return
	}
	s.trackLocked(ss)
	s.mu.Unlock()
	s.serveSession(ss)
}

// serveSession accepts and serves streams until the session ends, then
// waits for its handlers. The session must have been tracked.
func (s *Server) serveSession(ss *session) {
	defer s.wg.Done()
	ctx, cancel := context.WithCancel(s.ctx)
	stop := context.AfterFunc(ctx, func() { ss.closeFor(ErrClosed) })
	var handlers sync.WaitGroup
	for {
		ys, err := ss.ys.AcceptStream()
		if err != nil {
			break
		}
		handlers.Add(1)
		go func() {
			defer handlers.Done()
			s.serveStream(ctx, ss, ys)
		}()
	}
	stop()
	cancel()
	ss.ys.Close()
	handlers.Wait()
	s.mu.Lock()
	delete(s.sessions, ss)
	s.mu.Unlock()
	s.logger.Trace("rpc session ended", "remote", ss.peer)
}

// serveStream reads a stream's open frame and runs its handler.
func (s *Server) serveStream(ctx context.Context, ss *session, ys *yamux.Stream) {
	st := newStream(ys, ss, MethodInvalid, s.cfg.MaxFrameBytes)
	defer st.Close()

	ys.SetReadDeadline(time.Now().Add(s.cfg.HandshakeTimeout))
	kind, body, err := st.f.readFrame()
	if err != nil {
		if errors.Is(err, ErrFrameTooLarge) || errors.Is(err, ErrBadFrame) {
			s.logger.Warn("refused rpc stream", "remote", ss.peer, "error", err)
			st.sendError(err)
		}
		return
	}
	var of openFrame
	if kind != kindOpen {
		err = fmt.Errorf("%w: first frame is %s, want open", ErrBadFrame, kind)
	} else {
		err = st.f.decode(body, &of)
	}
	st.f.release()
	if err != nil {
		s.logger.Warn("refused rpc stream", "remote", ss.peer, "error", err)
		st.sendError(err)
		return
	}
	ys.SetReadDeadline(time.Time{})
	st.method = of.Method

	h := s.handler(of.Method)
	if h == nil {
		s.logger.Debug("rpc stream for unknown method", "remote", ss.peer, "method", of.Method)
		st.sendError(fmt.Errorf("%w: %s", ErrUnknownMethod, of.Method))
		return
	}
	hctx := ctx
	if of.Timeout > 0 {
		var cancel context.CancelFunc
		hctx, cancel = context.WithTimeout(ctx, time.Duration(of.Timeout))
		defer cancel()
	}
	st.watchCtx(hctx)
	if err := s.runHandler(hctx, h, st); err != nil {
		st.sendError(err)
	}
}

// runHandler calls h, turning a panic into an error so that one bad request
// cannot crash the node.
func (s *Server) runHandler(ctx context.Context, h StreamHandler, st *Stream) (err error) {
	defer func() {
		if r := recover(); r != nil {
			s.logger.Error("rpc handler panicked", "method", st.method, "remote", st.peer,
				"panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("handler for %s panicked: %v", st.method, r)
		}
	}()
	return h(ctx, st)
}

// sendError ends the stream with an error frame, unless the stream is
// already aborted. The message is cut so the frame fits the limit.
func (st *Stream) sendError(err error) {
	if st.closed.Load() || st.ctxErr.Load() != nil {
		return
	}
	we := toWire(err)
	if limit := min(4096, st.f.max-64-len(we.Code)); len(we.Message) > limit {
		we.Message = we.Message[:max(limit, 0)]
	}
	st.wmu.Lock()
	defer st.wmu.Unlock()
	st.f.writeFrames(st.conn, func(dst []byte) ([]byte, error) {
		return st.f.appendFrame(dst, kindError, &we)
	})
}

// Close ends every session (remote and local), cancels every handler's ctx
// and waits for the handlers to return. Later Local calls fail with
// ErrClosed, and a Mux closes the RPC connections it still hands over.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.wg.Wait()
		return nil
	}
	s.closed = true
	local := s.local
	sessions := make([]*session, 0, len(s.sessions))
	for ss := range s.sessions {
		sessions = append(sessions, ss)
	}
	s.mu.Unlock()

	s.cancel()
	for _, ss := range sessions {
		ss.closeFor(ErrClosed)
	}
	if local != nil {
		local.closeFor(ErrClosed)
	}
	s.wg.Wait()
	return nil
}
