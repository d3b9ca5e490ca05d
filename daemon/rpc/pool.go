package rpc

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/yamux"
)

// Pool is the client side of node RPC: one long-lived yamux session per
// remote address, dialed on first use (concurrent first calls share one
// dial), re-dialed after it dies, and one stream per call.
type Pool struct {
	cfg    Config
	logger hclog.Logger
	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex
	closed bool
	conns  map[string]*poolEntry
	wg     sync.WaitGroup
}

// poolEntry is the session to one address, or the dial in progress.
type poolEntry struct {
	addr  string
	ready chan struct{} // closed when the dial ended
	sess  *session      // set, with err, under Pool.mu before ready closes
	err   error
}

// NewPool returns a Pool with no sessions.
func NewPool(cfg Config) (*Pool, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Pool{
		cfg:    cfg,
		logger: cfg.logger(),
		ctx:    ctx,
		cancel: cancel,
		conns:  map[string]*poolEntry{},
	}, nil
}

// Call sends req to the handler of m at addr on a new stream of the session
// to addr and decodes the answer into resp (a pointer, or nil to discard it).
// Cancelling ctx aborts the call at once. See the package documentation for
// which errors mean the request may have reached the peer.
func (p *Pool) Call(ctx context.Context, addr string, m Method, req, resp any) error {
	for attempt := 0; ; attempt++ {
		sess, err := p.session(ctx, addr)
		if err != nil {
			return fmt.Errorf("rpc %s to %s: %w", m, addr, err)
		}
		err = sess.call(ctx, m, req, resp)
		if attempt == 0 && p.stale(sess, err) {
			continue
		}
		return err
	}
}

// Open opens a long-lived bidirectional stream to the handler of m at addr.
// ctx governs the whole stream: cancelling it aborts blocked Send and Recv
// calls. The caller must Close the stream.
func (p *Pool) Open(ctx context.Context, addr string, m Method) (*Stream, error) {
	for attempt := 0; ; attempt++ {
		sess, err := p.session(ctx, addr)
		if err != nil {
			return nil, fmt.Errorf("rpc %s to %s: %w", m, addr, err)
		}
		st, err := sess.openStream(ctx, m)
		if attempt == 0 && p.stale(sess, err) {
			continue
		}
		return st, err
	}
}

// stale reports whether err came from a cached session that had died
// before the stream opened (and not because it was dropped or the pool
// closed), so one retry on a fresh session is worth it.
func (p *Pool) stale(sess *session, err error) bool {
	return errors.Is(err, ErrUnreachable) && sess.gone() && sess.reason.Load() == nil &&
		p.ctx.Err() == nil
}

// Drop closes the session to addr, if any: every call and stream in flight
// on it fails at once with ErrConnLost, and the next call dials again. A
// dial in progress to addr is abandoned and its waiters get ErrUnreachable.
// Use it when addr stopped being the node a call is meant for (e.g. a newer
// leader is known).
func (p *Pool) Drop(addr string) {
	p.mu.Lock()
	e := p.conns[addr]
	if e != nil {
		delete(p.conns, addr)
	}
	var sess *session
	if e != nil {
		sess = e.sess
	}
	p.mu.Unlock()
	if sess != nil {
		p.logger.Debug("dropping rpc session", "peer", addr)
		sess.closeFor(errDropped)
	}
}

// Close closes every session (in-flight calls fail with ErrConnLost) and
// abandons dials; later calls fail with ErrUnreachable and ErrClosed. It
// waits for the Pool's goroutines.
func (p *Pool) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.wg.Wait()
		return nil
	}
	p.closed = true
	entries := p.conns
	p.conns = map[string]*poolEntry{}
	p.mu.Unlock()
	p.cancel()
	for _, e := range entries {
		p.mu.Lock()
		sess := e.sess
		p.mu.Unlock()
		if sess != nil {
			sess.closeFor(fmt.Errorf("pool %w", ErrClosed))
		}
	}
	p.wg.Wait()
	return nil
}

// session returns a live session to addr, dialing if needed. Every error
// matches ErrUnreachable.
func (p *Pool) session(ctx context.Context, addr string) (*session, error) {
	for attempt := 0; ; attempt++ {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, unreachable(fmt.Errorf("pool %w", ErrClosed))
		}
		e := p.conns[addr]
		if e == nil {
			e = &poolEntry{addr: addr, ready: make(chan struct{})}
			p.conns[addr] = e
			p.wg.Add(1)
			go p.dial(e)
		}
		p.mu.Unlock()

		select {
		case <-e.ready:
		case <-ctx.Done():
			return nil, unreachable(context.Cause(ctx))
		}
		if e.err != nil {
			return nil, e.err
		}
		if !e.sess.gone() || attempt > 0 {
			return e.sess, nil
		}
		// Died before its watcher removed it: dial once more.
		p.remove(e)
	}
}

// remove forgets e if it is still the entry for its address.
func (p *Pool) remove(e *poolEntry) {
	p.mu.Lock()
	if p.conns[e.addr] == e {
		delete(p.conns, e.addr)
	}
	p.mu.Unlock()
}

// dial establishes e's session, bounded by DialTimeout. A ping proves the
// peer's Mux handed the connection to its RPC server (with TLS 1.3 the
// client handshake ends before the server has checked our certificate),
// so a refused connection fails the dial instead of the first call.
func (p *Pool) dial(e *poolEntry) {
	defer p.wg.Done()
	ctx, cancel := context.WithTimeout(p.ctx, p.cfg.DialTimeout)
	defer cancel()
	sess, err := p.connect(ctx, e.addr)

	p.mu.Lock()
	var orphan *session // dialed for an entry dropped meanwhile
	if err == nil && p.conns[e.addr] != e {
		err = errDropped
		if p.closed {
			err = fmt.Errorf("pool %w", ErrClosed)
		}
		orphan = sess
	}
	if err != nil {
		e.err = fmt.Errorf("dial: %w", unreachable(err))
		if p.conns[e.addr] == e {
			delete(p.conns, e.addr)
		}
	} else {
		e.sess = sess
		p.wg.Add(1)
		go p.watch(e)
	}
	close(e.ready)
	p.mu.Unlock()
	if orphan != nil {
		// Closed outside p.mu: closing flushes the connection (up to a
		// second against a peer that reads nothing).
		orphan.closeFor(err)
	}
	if err != nil {
		p.logger.Debug("rpc dial failed", "peer", e.addr, "error", err)
	}
}

// connect dials addr and starts a client session, proven by one ping.
func (p *Pool) connect(ctx context.Context, addr string) (*session, error) {
	conn, err := dialNode(ctx, p.cfg.DialTLS, addr, ProtoRPC)
	if err != nil {
		return nil, err
	}
	conn = batch(conn)
	ys, err := yamux.Client(conn, p.cfg.yamuxConfig(p.logger, true))
	if err != nil {
		conn.Close()
		return nil, err
	}
	sess := &session{ys: ys, peer: addr, maxFrame: p.cfg.MaxFrameBytes}
	pinged := make(chan error, 1)
	go func() {
		_, err := ys.Ping()
		pinged <- err
	}()
	select {
	case err = <-pinged:
	case <-ctx.Done():
		err = context.Cause(ctx)
	}
	if err != nil {
		ys.Close()
		return nil, fmt.Errorf("session handshake: %w", err)
	}
	return sess, nil
}

// watch forgets e's session once it dies.
func (p *Pool) watch(e *poolEntry) {
	defer p.wg.Done()
	<-e.sess.ys.CloseChan()
	p.remove(e)
	p.logger.Trace("rpc session closed", "peer", e.addr, "cause", e.sess.cause())
}

// sessionCount returns how many sessions and dials the pool holds (tests).
func (p *Pool) sessionCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}
