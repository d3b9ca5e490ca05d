package rpc

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// Mux owns the node port's listener and splits its connections by their
// first byte: raft connections go to RaftLayer, RPC connections to a Server.
type Mux struct {
	cfg    Config
	ln     net.Listener
	srv    *Server
	addr   net.Addr
	logger hclog.Logger
	layer  *raftLayer

	raftCh  chan net.Conn
	closeCh chan struct{}

	mu     sync.Mutex
	closed bool
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

// NewMux starts serving ln: it accepts connections until Close. srv serves
// RPC connections; with a nil srv they are closed. The advertised address is
// cfg.AdvertiseAddr, or ln's address when that is empty.
func NewMux(ln net.Listener, srv *Server, cfg Config) (*Mux, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	adv := cfg.AdvertiseAddr
	if adv == "" {
		adv = ln.Addr().String()
	}
	addr, err := advertisable(adv)
	if err != nil {
		return nil, fmt.Errorf("advertise address %q: %w", adv, err)
	}
	m := &Mux{
		cfg:     cfg,
		ln:      ln,
		srv:     srv,
		addr:    addr,
		logger:  cfg.logger(),
		raftCh:  make(chan net.Conn),
		closeCh: make(chan struct{}),
		conns:   map[net.Conn]struct{}{},
	}
	m.layer = &raftLayer{m: m, closeCh: make(chan struct{})}
	m.wg.Add(1)
	go m.acceptLoop()
	return m, nil
}

// Addr returns the advertised address of the port.
func (m *Mux) Addr() net.Addr { return m.addr }

// RaftLayer returns the raft side of the port, for
// raft.NewNetworkTransportWithConfig. Its Accept only returns connections
// that chose ProtoRaft; its Dial connects to a peer's port (with TLS when
// Config.DialTLS is set) and writes ProtoRaft; its Addr is Mux.Addr; its
// Close stops handing raft connections to raft without closing the Mux.
func (m *Mux) RaftLayer() raft.StreamLayer { return m.layer }

// Close stops accepting, closes every connection the Mux accepted
// (including those handed to raft and the RPC sessions on them), and waits
// for its goroutines, including the handlers of those RPC sessions.
func (m *Mux) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		m.wg.Wait()
		return nil
	}
	m.closed = true
	close(m.closeCh)
	err := m.ln.Close()
	conns := make([]net.Conn, 0, len(m.conns))
	for c := range m.conns {
		conns = append(conns, c)
	}
	m.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
	m.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// acceptLoop accepts connections and hands each to its own goroutine.
func (m *Mux) acceptLoop() {
	defer m.wg.Done()
	var backoff time.Duration
	for {
		conn, err := m.ln.Accept()
		if err != nil {
			select {
			case <-m.closeCh:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				m.logger.Error("node port listener closed under the mux", "error", err)
				return
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			m.logger.Warn("accept failed on node port", "error", err, "retry_in", backoff)
			select {
			case <-time.After(backoff):
			case <-m.closeCh:
				return
			}
			continue
		}
		backoff = 0
		if !m.track(conn) {
			conn.Close()
			return
		}
		go m.handleConn(conn)
	}
}

// track records an accepted connection; false when the Mux is closed.
func (m *Mux) track(conn net.Conn) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return false
	}
	m.conns[conn] = struct{}{}
	m.wg.Add(1)
	return true
}

// release forgets and closes a connection.
func (m *Mux) release(conn net.Conn) {
	m.mu.Lock()
	delete(m.conns, conn)
	m.mu.Unlock()
	conn.Close()
}

// handleConn runs the optional TLS handshake, reads the protocol byte and
// hands the connection on. It owns raw until it is handed on.
func (m *Mux) handleConn(raw net.Conn) {
	defer m.wg.Done()
	remote := raw.RemoteAddr().String()
	raw.SetDeadline(time.Now().Add(m.cfg.HandshakeTimeout))
	conn := raw
	if m.cfg.TLS != nil {
		tc := tls.Server(raw, m.cfg.TLS)
		if err := tc.Handshake(); err != nil {
			m.logger.Warn("TLS handshake failed on node port", "remote", remote, "error", err)
			m.release(raw)
			return
		}
		conn = tc
	}
	var b [1]byte
	if _, err := io.ReadFull(conn, b[:]); err != nil {
		m.logger.Debug("connection closed before its protocol byte", "remote", remote, "error", err)
		m.release(raw)
		return
	}
	raw.SetDeadline(time.Time{})

	switch Proto(b[0]) {
	case ProtoRaft:
		m.handRaft(raw, conn, remote)
	case ProtoRPC:
		if m.srv == nil {
			m.logger.Warn("rpc connection on a port without an rpc server", "remote", remote)
			m.release(raw)
			return
		}
		m.srv.serveConn(conn)
		m.release(raw)
	case protoRPCv1:
		m.logger.Warn("node RPC from a peer running an incompatible older version (protocol byte 0x02, msgpack-only), closing connection; upgrade the peer",
			"remote", remote)
		m.release(raw)
	default:
		m.logger.Warn("unknown protocol byte on node port, closing connection",
			"remote", remote, "byte", Proto(b[0]).String())
		m.release(raw)
	}
}

// handRaft gives a raft connection to the raft layer's Accept, waiting at
// most HandshakeTimeout for raft to take it.
func (m *Mux) handRaft(raw, conn net.Conn, remote string) {
	rc := &raftConn{Conn: conn, release: func() { m.release(raw) }}
	t := time.NewTimer(m.cfg.HandshakeTimeout)
	defer t.Stop()
	select {
	case m.raftCh <- rc:
	case <-m.layer.closeCh:
		rc.Close()
	case <-m.closeCh:
		rc.Close()
	case <-t.C:
		m.logger.Warn("raft did not accept a raft connection in time, closing it", "remote", remote)
		rc.Close()
	}
}

// raftConn is a raft connection; closing it also forgets it in the Mux.
type raftConn struct {
	net.Conn
	once    sync.Once
	release func()
}

// Close closes the connection once.
func (c *raftConn) Close() error {
	c.once.Do(c.release)
	return nil
}

// raftLayer is the raft.StreamLayer of a Mux.
type raftLayer struct {
	m         *Mux
	closeOnce sync.Once
	closeCh   chan struct{}
}

var _ raft.StreamLayer = (*raftLayer)(nil)

// Accept returns the next connection that chose ProtoRaft.
func (l *raftLayer) Accept() (net.Conn, error) {
	select {
	case c := <-l.m.raftCh:
		return c, nil
	case <-l.closeCh:
		return nil, fmt.Errorf("raft layer %w", ErrClosed)
	case <-l.m.closeCh:
		return nil, fmt.Errorf("node port %w", ErrClosed)
	}
}

// Close stops Accept; the Mux and its RPC side keep running.
func (l *raftLayer) Close() error {
	l.closeOnce.Do(func() { close(l.closeCh) })
	return nil
}

// Addr returns the advertised address.
func (l *raftLayer) Addr() net.Addr { return l.m.addr }

// Dial connects to a peer's node port for raft.
func (l *raftLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	conn, err := dialNode(ctx, l.m.cfg.DialTLS, string(address), ProtoRaft)
	if err != nil {
		return nil, fmt.Errorf("raft dial %s: %w", address, err)
	}
	return conn, nil
}
