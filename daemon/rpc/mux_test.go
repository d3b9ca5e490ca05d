package rpc

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// TestOldRPCProtoByte: a peer of the msgpack-only node RPC (protocol byte
// 0x02) is closed with a WARN that names it as an incompatible older
// version, instead of speaking a wire it would misparse.
func TestOldRPCProtoByte(t *testing.T) {
	var logs logBuffer
	cfg := testConfig(t, &logs)
	n := mustNode(t, cfg, "127.0.0.1:0")

	local := closedAfter(t, n.addr, []byte{byte(protoRPCv1)})
	waitFor(t, 5*time.Second, "the WARN line", func() bool {
		return strings.Contains(logs.String(), "incompatible older version")
	})
	mustContain(t, logs.String(), "[WARN]", "protocol byte 0x02", local)
}

// closedAfter connects to addr, sends first and checks that the node
// closes the connection (rather than answering or waiting); it returns the
// connection's local address, which the node's log line names.
func closedAfter(t *testing.T, addr string, first []byte) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(first); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("connection starting % x not closed: %v", first[:min(len(first), 8)], err)
	}
	return c.LocalAddr().String()
}

// TestGarbageFirstByte: an HTTP request on the node port is closed with one
// WARN line naming the remote address and the byte; the mux keeps serving
// RPC and raft.
func TestGarbageFirstByte(t *testing.T) {
	var logs logBuffer
	cfg := testConfig(t, &logs)
	n := mustNode(t, cfg, "127.0.0.1:0")

	local := closedAfter(t, n.addr, []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	waitFor(t, 5*time.Second, "the WARN line", func() bool {
		return strings.Contains(logs.String(), "unknown protocol byte")
	})
	mustContain(t, logs.String(), "[WARN]", "unknown protocol byte", local, "byte=0x47")

	p := mustPool(t, cfg)
	if err := p.Call(ctxT(t, 10*time.Second), n.addr, methodEcho, &echoReq{}, nil); err != nil {
		t.Fatalf("RPC after garbage: %v", err)
	}
	rc, err := n.mux.RaftLayer().Dial(raft.ServerAddress(n.addr), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, err := n.mux.RaftLayer().Accept()
	if err != nil {
		t.Fatalf("raft Accept after garbage: %v", err)
	}
	got.Close()
}

// TestSlowClientDoesNotBlock: connections that send nothing do not hold up
// other connections, and are closed after HandshakeTimeout.
func TestSlowClientDoesNotBlock(t *testing.T) {
	silentConns := func(t *testing.T, addr string) []net.Conn {
		var cs []net.Conn
		for i := 0; i < 5; i++ {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			cs = append(cs, c)
		}
		return cs
	}
	t.Run("accept", func(t *testing.T) {
		// With a 60s handshake timeout, a serialised accept would hold
		// the call for a minute.
		cfg := testConfig(t, nil)
		cfg.HandshakeTimeout = time.Minute
		n := mustNode(t, cfg, "127.0.0.1:0")
		silentConns(t, n.addr)
		p := mustPool(t, cfg)
		start := time.Now()
		if err := p.Call(ctxT(t, 20*time.Second), n.addr, methodEcho, &echoReq{}, nil); err != nil {
			t.Fatal(err)
		}
		t.Logf("call behind 5 silent connections took %v", time.Since(start))
	})
	t.Run("timeout", func(t *testing.T) {
		cfg := testConfig(t, nil)
		cfg.HandshakeTimeout = 300 * time.Millisecond
		n := mustNode(t, cfg, "127.0.0.1:0")
		for _, c := range silentConns(t, n.addr) {
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := c.Read(make([]byte, 1)); err == nil || isTimeout(err) {
				t.Fatalf("silent connection still open: %v", err)
			}
		}
	})
}

// TestMuxCloseBounded: Mux.Close returns quickly while clients hold
// in-flight calls, open streams, raft connections and silent connections;
// the clients see ErrConnLost.
func TestMuxCloseBounded(t *testing.T) {
	cfg := testConfig(t, nil)
	n := mustNode(t, cfg, "127.0.0.1:0")
	p := mustPool(t, cfg)
	probe := probeOf(n.srv)
	ctx := ctxT(t, 30*time.Second)

	errc := make(chan error, 10)
	for i := 0; i < 4; i++ {
		go func() { errc <- p.Call(ctx, n.addr, methodBlock, &echoReq{}, nil) }()
		recvWithin(t, probe.started, 5*time.Second, "handler start")
	}
	s, err := p.Open(ctx, n.addr, methodChat)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	go func() { errc <- s.Recv(nil) }()

	silent, err := net.Dial("tcp", n.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	rc, err := n.mux.RaftLayer().Dial(raft.ServerAddress(n.addr), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	accepted, err := n.mux.RaftLayer().Accept()
	if err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	within(t, 2*time.Second, "Mux.Close", func() { n.mux.Close() })
	for i := 0; i < 5; i++ {
		if err := recvWithin(t, errc, 2*time.Second, "calls to fail"); !errors.Is(err, ErrConnLost) {
			t.Fatalf("in-flight call after Mux.Close: %v", err)
		}
	}
	t.Logf("Mux.Close and in-flight failures took %v", time.Since(start))
	// The raft connection handed to raft was closed too.
	rc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := rc.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("raft connection survived Mux.Close: %v", err)
	}
	accepted.Close()
	if _, err := n.mux.RaftLayer().Accept(); !errors.Is(err, ErrClosed) {
		t.Fatalf("raft Accept after Close: %v", err)
	}
	if _, err := net.DialTimeout("tcp", n.addr, time.Second); err == nil {
		t.Fatal("listener still open")
	}
}

// TestRaftLayerClose: closing the raft layer (raft's transport shutting
// down) leaves RPC running.
func TestRaftLayerClose(t *testing.T) {
	cfg := testConfig(t, nil)
	n := mustNode(t, cfg, "127.0.0.1:0")
	layer := n.mux.RaftLayer()
	if layer.Addr().String() != n.addr {
		t.Fatalf("raft layer Addr %s, want %s", layer.Addr(), n.addr)
	}
	layer.Close()
	if _, err := layer.Accept(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Accept after layer Close: %v", err)
	}
	p := mustPool(t, cfg)
	if err := p.Call(ctxT(t, 10*time.Second), n.addr, methodEcho, &echoReq{}, nil); err != nil {
		t.Fatalf("RPC after raft layer Close: %v", err)
	}
}

// TestAdvertiseAddr: the raft layer reports the configured address, and an
// unspecified listener address without one is refused.
func TestAdvertiseAddr(t *testing.T) {
	cfg := testConfig(t, nil)
	cfg.AdvertiseAddr = "10.1.2.3:4781"
	n := mustNode(t, cfg, "127.0.0.1:0")
	if got := n.mux.RaftLayer().Addr().String(); got != "10.1.2.3:4781" {
		t.Fatalf("Addr = %s", got)
	}
	ln, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if _, err := NewMux(ln, nil, testConfig(t, nil)); !errors.Is(err, ErrNotAdvertisable) {
		t.Fatalf("NewMux on 0.0.0.0 without AdvertiseAddr: %v", err)
	}
}

// blackhole is a TCP proxy that can stop delivering bytes in both
// directions without closing anything, like a network partition.
type blackhole struct {
	ln      net.Listener
	target  string
	dropped atomic.Bool
	wg      sync.WaitGroup
	mu      sync.Mutex
	conns   []net.Conn
}

func newBlackhole(t *testing.T, target string) *blackhole {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &blackhole{ln: ln, target: target}
	b.wg.Add(1)
	go b.serve()
	t.Cleanup(b.close)
	return b
}

func (b *blackhole) serve() {
	defer b.wg.Done()
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", b.target)
		if err != nil {
			c.Close()
			continue
		}
		b.mu.Lock()
		b.conns = append(b.conns, c, up)
		b.mu.Unlock()
		b.wg.Add(2)
		go b.pipe(c, up)
		go b.pipe(up, c)
	}
}

// pipe copies src to dst, discarding everything while partitioned.
func (b *blackhole) pipe(dst, src net.Conn) {
	defer b.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !b.dropped.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (b *blackhole) close() {
	b.ln.Close()
	b.mu.Lock()
	for _, c := range b.conns {
		c.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
}

// TestKeepaliveDetectsPartition: when the network silently drops
// everything, keepalives fail the session (and its in-flight calls) within
// KeepAliveInterval + ConnectionWriteTimeout, and the pool re-dials.
func TestKeepaliveDetectsPartition(t *testing.T) {
	cfg := testConfig(t, nil)
	n := mustNode(t, cfg, "127.0.0.1:0")
	bh := newBlackhole(t, n.addr)
	pcfg := cfg
	pcfg.KeepAliveInterval = 200 * time.Millisecond
	pcfg.ConnectionWriteTimeout = 500 * time.Millisecond
	p := mustPool(t, pcfg)
	probe := probeOf(n.srv)
	addr := bh.ln.Addr().String()
	ctx := ctxT(t, 30*time.Second)

	errc := make(chan error, 1)
	go func() { errc <- p.Call(ctx, addr, methodBlock, &echoReq{}, nil) }()
	recvWithin(t, probe.started, 5*time.Second, "handler start")
	bh.dropped.Store(true)
	start := time.Now()
	err := recvWithin(t, errc, 5*time.Second, "partition to be detected")
	if !errors.Is(err, ErrConnLost) {
		t.Fatalf("got %v, want ErrConnLost", err)
	}
	t.Logf("partition detected after %v", time.Since(start))
	bh.dropped.Store(false)
	waitFor(t, 10*time.Second, "calls to work after the partition heals", func() bool {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		return p.Call(cctx, addr, methodEcho, &echoReq{}, nil) == nil
	})
}
