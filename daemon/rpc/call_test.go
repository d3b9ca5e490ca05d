package rpc

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestUnaryRoundtrip sends binary payloads (all byte values, 1 MiB random)
// through a real TCP session and gets them back intact.
func TestUnaryRoundtrip(t *testing.T) {
	cfg := testConfig(t, nil)
	n := mustNode(t, cfg, "127.0.0.1:0")
	p := mustPool(t, cfg)

	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	big := make([]byte, 1<<20)
	rand.Read(big)
	at := time.Now().Round(0)
	for _, payload := range [][]byte{all, big, nil} {
		req := echoReq{ID: 42, Name: "job", Payload: payload, At: at, Tags: map[string]string{"zone": "b"}}
		var resp echoResp
		if err := p.Call(ctxT(t, 10*time.Second), n.addr, methodEcho, &req, &resp); err != nil {
			t.Fatalf("Call: %v", err)
		}
		if resp.Note != "echo" || resp.Req.ID != 42 || resp.Req.Name != "job" || resp.Req.Tags["zone"] != "b" || !resp.Req.At.Equal(at) {
			t.Fatalf("got %+v", resp)
		}
		if !bytes.Equal(resp.Req.Payload, payload) {
			t.Fatalf("payload of %d bytes changed in transit", len(payload))
		}
	}
}

// TestRemoteErrors: a handler error travels as code + message; registered
// codes match their sentinel with errors.Is; others are *RemoteError.
func TestRemoteErrors(t *testing.T) {
	cfg := testConfig(t, nil)
	n := mustNode(t, cfg, "127.0.0.1:0")
	p := mustPool(t, cfg)
	ctx := ctxT(t, 10*time.Second)

	err := p.Call(ctx, n.addr, methodError, &echoReq{ID: 7, Name: "not_leader"}, nil)
	if !errors.Is(err, errTestNotLeader) {
		t.Fatalf("got %v, want errors.Is errTestNotLeader", err)
	}
	var re *RemoteError
	if !errors.As(err, &re) || re.Code != "test_not_leader" || re.Message != "cannot apply job 7: not the leader (test)" {
		t.Fatalf("RemoteError = %#v", re)
	}
	if errors.Is(err, ErrUnreachable) || errors.Is(err, ErrConnLost) || !MayHaveReached(err) {
		t.Fatalf("remote error classified as transport error: %v", err)
	}

	err = p.Call(ctx, n.addr, methodError, &echoReq{Name: "disk on fire"}, nil)
	if !errors.As(err, &re) || re.Code != "" || err.Error() != "disk on fire" {
		t.Fatalf("unregistered error came back as %#v (%v)", re, err)
	}
	if errors.Is(err, errTestNotLeader) {
		t.Fatal("unregistered error matches a sentinel")
	}

	// A panicking handler answers with an error; the server keeps serving.
	err = p.Call(ctx, n.addr, methodPanic, &echoReq{}, nil)
	if !errors.As(err, &re) || !strings.Contains(re.Message, "panicked: boom") {
		t.Fatalf("panic came back as %v", err)
	}
	if err := p.Call(ctx, n.addr, methodEcho, &echoReq{}, &echoResp{}); err != nil {
		t.Fatalf("after panic: %v", err)
	}
}

// TestDeadlinePropagates: the handler's ctx carries the caller's deadline.
func TestDeadlinePropagates(t *testing.T) {
	cfg := testConfig(t, nil)
	n := mustNode(t, cfg, "127.0.0.1:0")
	p := mustPool(t, cfg)
	var resp echoResp
	if err := p.Call(ctxT(t, 3*time.Second), n.addr, methodError, &echoReq{Name: "deadline"}, &resp); err != nil {
		t.Fatal(err)
	}
	left, err := time.ParseDuration(resp.Note)
	if err != nil || left <= 0 || left > 3*time.Second {
		t.Fatalf("handler deadline %q", resp.Note)
	}
}

func TestUnknownMethod(t *testing.T) {
	cfg := testConfig(t, nil)
	n := mustNode(t, cfg, "127.0.0.1:0")
	p := mustPool(t, cfg)
	ctx := ctxT(t, 10*time.Second)

	err := p.Call(ctx, n.addr, methodUnknown, &echoReq{}, nil)
	if !errors.Is(err, ErrUnknownMethod) || !strings.Contains(err.Error(), "method(199)") {
		t.Fatalf("Call: got %v, want ErrUnknownMethod naming method(199)", err)
	}
	s, err := p.Open(ctx, n.addr, methodUnknown)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Recv(nil); !errors.Is(err, ErrUnknownMethod) {
		t.Fatalf("Recv: got %v, want ErrUnknownMethod", err)
	}
	if err := s.Recv(nil); !errors.Is(err, ErrUnknownMethod) {
		t.Fatalf("second Recv: got %v, want the same error", err)
	}
	// The session survives for other calls.
	if err := p.Call(ctx, n.addr, methodEcho, &echoReq{}, nil); err != nil {
		t.Fatal(err)
	}
	if err := p.Call(ctx, n.addr, MethodPing, &Ping{}, &Ping{}); err != nil {
		t.Fatalf("built-in ping: %v", err)
	}
	if got := n.ln.accepted.Load(); got != 1 {
		t.Fatalf("%d connections, want 1", got)
	}
}

// TestOversizeFrames: a peer announcing 1 GiB is refused by the server
// without allocating it; a request over the caller's limit is refused
// before sending; an answer over the caller's limit fails the call.
func TestOversizeFrames(t *testing.T) {
	cfg := testConfig(t, nil)
	n := mustNode(t, cfg, "127.0.0.1:0")
	ctx := ctxT(t, 10*time.Second)

	// A raw session: open frame, then a header claiming 1 GiB.
	p := mustPool(t, cfg)
	sess, err := p.session(ctx, n.addr)
	if err != nil {
		t.Fatal(err)
	}
	ys, err := sess.ys.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	st := newStream(ys, sess, methodEcho, cfg.MaxFrameBytes)
	defer st.Close()
	if err := st.start(ctx, false, nil); err != nil {
		t.Fatal(err)
	}
	var before, after runtimeMem
	before.read()
	if _, err := ys.Write([]byte{0x40, 0, 0, 0, byte(kindData), 1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	err = st.Recv(nil)
	after.read()
	if !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("got %v, want ErrFrameTooLarge from the server", err)
	}
	if d := after.total - before.total; d > 256<<20 {
		t.Fatalf("server allocated %d bytes for an announced 1 GiB frame", d)
	}

	// Request over the caller's own limit: refused before it is sent.
	small := cfg
	small.MaxFrameBytes = 1024
	ps := mustPool(t, small)
	err = ps.Call(ctx, n.addr, methodEcho, &echoReq{Payload: make([]byte, 4096)}, nil)
	if !errors.Is(err, ErrFrameTooLarge) || !errors.Is(err, ErrUnreachable) {
		t.Fatalf("oversize request: got %v, want ErrFrameTooLarge and ErrUnreachable", err)
	}
	// Answer over the caller's limit (the server's is 16 MiB): the request
	// was sent, so this is not ErrUnreachable.
	n2 := mustNode(t, small, "127.0.0.1:0")
	_ = n2
	big := cfg
	pb := mustPool(t, big)
	err = pb.Call(ctx, n2.addr, methodEcho, &echoReq{Payload: make([]byte, 4096)}, nil)
	if !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("request over the server's limit: got %v, want ErrFrameTooLarge", err)
	}
	err = ps.Call(ctx, n.addr, methodEcho, &echoReq{Payload: make([]byte, 900)}, nil)
	if err != nil {
		t.Fatalf("request within limits: %v", err)
	}
}

// TestCancelAbortsCall: cancelling ctx returns a blocked Call within 1s and
// cancels the handler's ctx too.
func TestCancelAbortsCall(t *testing.T) {
	cfg := testConfig(t, nil)
	n := mustNode(t, cfg, "127.0.0.1:0")
	p := mustPool(t, cfg)
	probe := probeOf(n.srv)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- p.Call(ctx, n.addr, methodBlock, &echoReq{}, nil) }()
	recvWithin(t, probe.started, 5*time.Second, "handler start")
	start := time.Now()
	cancel()
	err := recvWithin(t, errc, time.Second, "Call to return after cancel")
	if el := time.Since(start); el > time.Second {
		t.Fatalf("Call returned %v after cancel", el)
	}
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrUnreachable) || !MayHaveReached(err) {
		t.Fatalf("got %v, want context.Canceled (may have reached)", err)
	}
	if herr := recvWithin(t, probe.ended, time.Second, "handler ctx to end"); !errors.Is(herr, context.Canceled) {
		t.Fatalf("handler ctx ended with %v", herr)
	}

	// Cancelled before the call: unreachable, nothing sent.
	err = p.Call(ctx, n.addr, methodEcho, &echoReq{}, nil)
	if !errors.Is(err, ErrUnreachable) || !errors.Is(err, context.Canceled) || MayHaveReached(err) {
		t.Fatalf("call with a done ctx: %v", err)
	}

	// A blocked Recv on a long-lived stream is aborted the same way.
	sctx, scancel := context.WithCancel(context.Background())
	s, err := p.Open(sctx, n.addr, methodChat)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Send(&echoReq{ID: 0}); err != nil {
		t.Fatal(err)
	}
	go func() { errc <- s.Recv(&echoResp{}) }()
	scancel()
	if err := recvWithin(t, errc, time.Second, "Recv to return after cancel"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Recv: %v", err)
	}
}

// TestDropFailsInFlight: Drop fails every call and stream on the session
// at once with ErrConnLost; the next call dials a new session.
func TestDropFailsInFlight(t *testing.T) {
	cfg := testConfig(t, nil)
	n := mustNode(t, cfg, "127.0.0.1:0")
	p := mustPool(t, cfg)
	probe := probeOf(n.srv)
	ctx := ctxT(t, 30*time.Second)

	const calls = 8
	errc := make(chan error, calls+1)
	for i := 0; i < calls; i++ {
		go func() { errc <- p.Call(ctx, n.addr, methodBlock, &echoReq{}, nil) }()
	}
	s, err := p.Open(ctx, n.addr, methodChat)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	go func() { errc <- s.Recv(&echoResp{}) }()
	for i := 0; i < calls; i++ {
		recvWithin(t, probe.started, 5*time.Second, "handlers to start")
	}

	start := time.Now()
	p.Drop(n.addr)
	// "At once" is 1s on a quiet machine; the bound is 3s because two
	// shared cores under -race can starve the woken goroutines. Without
	// Drop they would wait for their 30s ctx.
	for i := 0; i < calls+1; i++ {
		err := recvWithin(t, errc, 3*time.Second, "in-flight calls to fail")
		if !errors.Is(err, ErrConnLost) || !MayHaveReached(err) || !strings.Contains(err.Error(), "dropped") {
			t.Fatalf("in-flight call: %v, want ErrConnLost (dropped)", err)
		}
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Fatalf("Drop took %v to fail in-flight calls", el)
	}
	t.Logf("Drop failed %d in-flight calls and a stream in %v", calls, time.Since(start))
	// The server side notices too: every handler ctx ends.
	for i := 0; i < calls; i++ {
		recvWithin(t, probe.ended, 5*time.Second, "handler ctx to end after Drop")
	}
	if err := p.Call(ctx, n.addr, methodEcho, &echoReq{}, nil); err != nil {
		t.Fatalf("call after Drop: %v", err)
	}
	if got := n.ln.accepted.Load(); got != 2 {
		t.Fatalf("%d connections, want 2 (one per session)", got)
	}
	p.Drop("127.0.0.1:1") // unknown address: no-op
}

// TestRedialAfterRestart: after the server restarts on the same port, calls
// succeed again on a new session.
func TestRedialAfterRestart(t *testing.T) {
	cfg := testConfig(t, nil)
	n := mustNode(t, cfg, "127.0.0.1:0")
	p := mustPool(t, cfg)
	ctx := ctxT(t, 30*time.Second)
	if err := p.Call(ctx, n.addr, methodEcho, &echoReq{}, nil); err != nil {
		t.Fatal(err)
	}
	n.close(t)
	// The pool notices the session died (the peer closed the TCP conn).
	waitFor(t, 5*time.Second, "pool to forget the dead session", func() bool { return p.sessionCount() == 0 })
	err := p.Call(ctx, n.addr, methodEcho, &echoReq{}, nil)
	if !errors.Is(err, ErrUnreachable) || MayHaveReached(err) {
		t.Fatalf("call to a stopped node: %v, want ErrUnreachable", err)
	}
	n2 := mustNode(t, cfg, n.addr)
	if err := p.Call(ctx, n.addr, methodEcho, &echoReq{}, nil); err != nil {
		t.Fatalf("call after restart: %v", err)
	}
	if got := n2.ln.accepted.Load(); got != 1 {
		t.Fatalf("%d connections to the restarted node, want 1", got)
	}
}

// TestStaleSessionRetried: a session that died before its watcher removed
// it is replaced transparently (the first call does not fail).
func TestStaleSessionRetried(t *testing.T) {
	cfg := testConfig(t, nil)
	n := mustNode(t, cfg, "127.0.0.1:0")
	p := mustPool(t, cfg)
	ctx := ctxT(t, 10*time.Second)
	if err := p.Call(ctx, n.addr, methodEcho, &echoReq{}, nil); err != nil {
		t.Fatal(err)
	}
	// Kill the session from the server side; the client may or may not
	// have noticed by the time of the next call.
	n.srv.mu.Lock()
	for ss := range n.srv.sessions {
		ss.ys.Close()
	}
	n.srv.mu.Unlock()
	for i := 0; i < 3; i++ {
		if err := p.Call(ctx, n.addr, methodEcho, &echoReq{}, nil); err != nil && !errors.Is(err, ErrConnLost) {
			t.Fatalf("call %d after the session died: %v", i, err)
		}
	}
	waitFor(t, 5*time.Second, "a call on a new session", func() bool {
		return p.Call(ctx, n.addr, methodEcho, &echoReq{}, nil) == nil
	})
}

// TestConcurrentCallsOneConn: many concurrent first calls share one dial
// and one TCP connection.
func TestConcurrentCallsOneConn(t *testing.T) {
	cfg := testConfig(t, nil)
	n := mustNode(t, cfg, "127.0.0.1:0")
	p := mustPool(t, cfg)
	ctx := ctxT(t, 30*time.Second)

	const workers, each = 32, 20
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	start := make(chan struct{})
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := 0; i < each; i++ {
				id := uint64(w*1000 + i)
				var resp echoResp
				if err := p.Call(ctx, n.addr, methodEcho, &echoReq{ID: id, Payload: []byte(fmt.Sprint(id))}, &resp); err != nil {
					errc <- err
					return
				}
				if resp.Req.ID != id || string(resp.Req.Payload) != fmt.Sprint(id) {
					errc <- fmt.Errorf("call %d got answer %d", id, resp.Req.ID)
					return
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	if got := n.ln.accepted.Load(); got != 1 {
		t.Fatalf("%d TCP connections for %d calls, want 1", got, workers*each)
	}
}

// TestBidirectionalStream: both sides send many frames interleaved; the
// client's CloseSend ends the server's receive loop; the server's clean
// return is io.EOF to the client.
func TestBidirectionalStream(t *testing.T) {
	cfg := testConfig(t, nil)
	n := mustNode(t, cfg, "127.0.0.1:0")
	p := mustPool(t, cfg)
	ctx := ctxT(t, 30*time.Second)
	s, err := p.Open(ctx, n.addr, methodChat)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	chat(t, s, 2000)
}

// chat runs the client side of methodChat with n messages each way.
func chat(t *testing.T, s *Stream, n int) {
	t.Helper()
	if err := s.Send(&echoReq{ID: uint64(n)}); err != nil {
		t.Fatal(err)
	}
	sendErr := make(chan error, 1)
	go func() {
		for i := 0; i < n; i++ {
			if err := s.Send(&echoReq{ID: uint64(i), Payload: make([]byte, i%300)}); err != nil {
				sendErr <- err
				return
			}
		}
		sendErr <- s.CloseSend()
	}()
	for i := 0; i < n; i++ {
		var m echoResp
		if err := s.Recv(&m); err != nil {
			t.Fatalf("recv %d: %v", i, err)
		}
		if m.Note != "down" || m.Req.ID != uint64(i) {
			t.Fatalf("recv %d: got %+v", i, m)
		}
	}
	if err := <-sendErr; err != nil {
		t.Fatal(err)
	}
	var total echoResp
	if err := s.Recv(&total); err != nil {
		t.Fatal(err)
	}
	if total.Note != "total" || total.Req.ID != uint64(n) {
		t.Fatalf("server counted %+v, want %d", total, n)
	}
	if err := s.Recv(&total); err != io.EOF {
		t.Fatalf("after the server returned: %v, want io.EOF", err)
	}
}

// TestLocal: the in-process path reaches the same handlers with the same
// framing and errors, without any listener.
func TestLocal(t *testing.T) {
	cfg := testConfig(t, nil)
	srv := mustServer(t, cfg)
	ctx := ctxT(t, 30*time.Second)

	var resp echoResp
	payload := []byte{0, 1, 2, 0xff}
	if err := srv.LocalCall(ctx, methodEcho, &echoReq{ID: 9, Payload: payload}, &resp); err != nil {
		t.Fatal(err)
	}
	if resp.Req.ID != 9 || !bytes.Equal(resp.Req.Payload, payload) {
		t.Fatalf("got %+v", resp)
	}
	if err := srv.LocalCall(ctx, methodError, &echoReq{Name: "not_leader"}, nil); !errors.Is(err, errTestNotLeader) {
		t.Fatalf("got %v, want errTestNotLeader", err)
	}
	if err := srv.LocalCall(ctx, methodUnknown, &echoReq{}, nil); !errors.Is(err, ErrUnknownMethod) {
		t.Fatalf("got %v, want ErrUnknownMethod", err)
	}
	s, err := srv.Local(ctx, methodChat)
	if err != nil {
		t.Fatal(err)
	}
	if s.Peer() != "local" {
		t.Fatalf("Peer() = %q", s.Peer())
	}
	chat(t, s, 500)
	s.Close()

	// Cancel aborts a blocked local call too.
	probe := probeOf(srv)
	cctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() { errc <- srv.LocalCall(cctx, methodBlock, &echoReq{}, nil) }()
	recvWithin(t, probe.started, 5*time.Second, "handler start")
	cancel()
	if err := recvWithin(t, errc, time.Second, "local call to abort"); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
	recvWithin(t, probe.ended, time.Second, "handler ctx to end")

	// After Close, local calls are refused as unreachable.
	within(t, 5*time.Second, "Server.Close", func() { srv.Close() })
	err = srv.LocalCall(ctx, methodEcho, &echoReq{}, nil)
	if !errors.Is(err, ErrUnreachable) || !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

// TestDialFailures: a refused dial and a closed pool are ErrUnreachable.
func TestDialFailures(t *testing.T) {
	cfg := testConfig(t, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	p := mustPool(t, cfg)
	ctx := ctxT(t, 10*time.Second)
	err = p.Call(ctx, addr, methodEcho, &echoReq{}, nil)
	if !errors.Is(err, ErrUnreachable) || MayHaveReached(err) {
		t.Fatalf("refused dial: %v", err)
	}
	if _, err := p.Open(ctx, addr, methodChat); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("refused dial (Open): %v", err)
	}
	p.Close()
	if err := p.Call(ctx, addr, methodEcho, &echoReq{}, nil); !errors.Is(err, ErrUnreachable) || !errors.Is(err, ErrClosed) {
		t.Fatalf("closed pool: %v", err)
	}
}

// TestServerCloseEndsHandlers: Server.Close cancels handler contexts and
// fails in-flight calls with ErrConnLost, in bounded time.
func TestServerCloseEndsHandlers(t *testing.T) {
	cfg := testConfig(t, nil)
	n := mustNode(t, cfg, "127.0.0.1:0")
	p := mustPool(t, cfg)
	probe := probeOf(n.srv)
	errc := make(chan error, 1)
	go func() { errc <- p.Call(ctxT(t, 30*time.Second), n.addr, methodBlock, &echoReq{}, nil) }()
	recvWithin(t, probe.started, 5*time.Second, "handler start")
	within(t, 2*time.Second, "Server.Close", func() { n.srv.Close() })
	if err := recvWithin(t, errc, 2*time.Second, "call to fail"); !errors.Is(err, ErrConnLost) {
		t.Fatalf("got %v, want ErrConnLost", err)
	}
	// The Mux refuses new RPC sessions now: the dial's ping fails.
	p.Drop(n.addr)
	if err := p.Call(ctxT(t, 10*time.Second), n.addr, methodEcho, &echoReq{}, nil); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("call to a closed server: %v", err)
	}
}
