package rpc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Methods used by the tests; numbers above the daemon's range.
const (
	methodEcho    Method = 100 // unary: echoes echoReq back
	methodBlock   Method = 101 // unary: blocks until ctx ends
	methodError   Method = 102 // unary: returns the error named in the request
	methodChat    Method = 103 // stream: interleaved sends and receives
	methodPanic   Method = 104 // unary: panics
	methodSink    Method = 105 // stream: counts messages until EOF, answers the count
	methodUnknown Method = 199 // never registered
)

// echoReq is a request with the field types the daemon will send.
type echoReq struct {
	ID      uint64
	Name    string
	Payload []byte
	At      time.Time
	Tags    map[string]string
}

// echoResp is echoReq sent back, plus a note from the handler.
type echoResp struct {
	Req  echoReq
	Note string
}

var errTestNotLeader = errors.New("not the leader (test)")

func init() { RegisterError("test_not_leader", errTestNotLeader) }

// logBuffer is a goroutine-safe log sink.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testConfig returns a Config with short timeouts and a logger into logs.
func testConfig(t testing.TB, logs io.Writer) Config {
	t.Helper()
	if logs == nil {
		logs = io.Discard
	}
	cfg := DefaultConfig()
	// Generous: the tests run under -race on two shared cores, where a TLS
	// handshake can take seconds.
	cfg.HandshakeTimeout = 10 * time.Second
	cfg.DialTimeout = 10 * time.Second
	cfg.KeepAliveInterval = time.Second
	cfg.ConnectionWriteTimeout = 10 * time.Second
	cfg.StreamCloseTimeout = 5 * time.Second
	cfg.Logger = hclog.New(&hclog.LoggerOptions{Name: t.Name(), Output: logs, Level: hclog.Debug})
	return cfg
}

// countingListener counts accepted connections.
type countingListener struct {
	net.Listener
	accepted atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.accepted.Add(1)
	}
	return c, err
}

// node is a Server behind a Mux on a loopback port.
type node struct {
	srv  *Server
	mux  *Mux
	ln   *countingListener
	addr string
}

// mustNode starts a Server with the test handlers and a Mux on addr
// ("127.0.0.1:0" for any port). Cleanup closes both in bounded time.
func mustNode(t testing.TB, cfg Config, addr string) *node {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	srv := mustServer(t, cfg)
	cl := &countingListener{Listener: ln}
	mux, err := NewMux(cl, srv, cfg)
	if err != nil {
		t.Fatalf("NewMux: %v", err)
	}
	n := &node{srv: srv, mux: mux, ln: cl, addr: ln.Addr().String()}
	t.Cleanup(func() { n.close(t) })
	return n
}

// close closes the Mux and the Server, failing if that takes over 5s.
func (n *node) close(t testing.TB) {
	t.Helper()
	within(t, 5*time.Second, "Mux.Close", func() { n.mux.Close() })
	within(t, 5*time.Second, "Server.Close", func() { n.srv.Close() })
}

// mustServer returns a Server with the test handlers registered.
func mustServer(t testing.TB, cfg Config) *Server {
	t.Helper()
	srv, err := NewServer(cfg)
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	registerTestHandlers(srv)
	t.Cleanup(func() { within(t, 5*time.Second, "Server.Close", func() { srv.Close() }) })
	return srv
}

// blockStarted is signalled by methodBlock each time a call starts; tests
// that use methodBlock read it.
type blockProbe struct {
	started chan struct{}
	ended   chan error
}

var probes sync.Map // *Server -> *blockProbe

func probeOf(srv *Server) *blockProbe {
	p, _ := probes.LoadOrStore(srv, &blockProbe{
		started: make(chan struct{}, 1024),
		ended:   make(chan error, 1024),
	})
	return p.(*blockProbe)
}

func registerTestHandlers(srv *Server) {
	srv.Handle(methodEcho, Unary(func(ctx context.Context, req *echoReq) (*echoResp, error) {
		return &echoResp{Req: *req, Note: "echo"}, nil
	}))
	probe := probeOf(srv)
	srv.Handle(methodBlock, Unary(func(ctx context.Context, req *echoReq) (*echoResp, error) {
		probe.started <- struct{}{}
		<-ctx.Done()
		probe.ended <- ctx.Err()
		return nil, ctx.Err()
	}))
	srv.Handle(methodError, Unary(func(ctx context.Context, req *echoReq) (*echoResp, error) {
		switch req.Name {
		case "not_leader":
			return nil, fmt.Errorf("cannot apply job %d: %w", req.ID, errTestNotLeader)
		case "deadline":
			dl, ok := ctx.Deadline()
			if !ok {
				return nil, errors.New("no deadline")
			}
			return &echoResp{Note: time.Until(dl).String()}, nil
		default:
			return nil, errors.New(req.Name)
		}
	}))
	srv.Handle(methodChat, chatHandler)
	srv.Handle(methodSink, func(ctx context.Context, s *Stream) error {
		var n uint64
		var m echoReq
		for {
			err := s.Recv(&m)
			if err == io.EOF {
				return s.Send(&echoResp{Req: echoReq{ID: n}})
			}
			if err != nil {
				return err
			}
			n++
		}
	})
	srv.Handle(methodPanic, Unary(func(ctx context.Context, req *echoReq) (*echoResp, error) {
		panic("boom")
	}))
}

// chatHandler receives numbered messages while it sends its own, until the
// client closes its side; then it sends how many it got and returns.
func chatHandler(ctx context.Context, s *Stream) error {
	var first echoReq
	if err := s.Recv(&first); err != nil {
		return err
	}
	n := int(first.ID)
	sendErr := make(chan error, 1)
	go func() {
		for i := 0; i < n; i++ {
			if err := s.Send(&echoResp{Req: echoReq{ID: uint64(i)}, Note: "down"}); err != nil {
				sendErr <- err
				return
			}
		}
		sendErr <- nil
	}()
	got := 0
	for {
		var m echoReq
		err := s.Recv(&m)
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if m.ID != uint64(got) {
			return fmt.Errorf("server got message %d, want %d", m.ID, got)
		}
		got++
	}
	if err := <-sendErr; err != nil {
		return err
	}
	return s.Send(&echoResp{Req: echoReq{ID: uint64(got)}, Note: "total"})
}

// mustPool returns a Pool closed at cleanup in bounded time.
func mustPool(t testing.TB, cfg Config) *Pool {
	t.Helper()
	p, err := NewPool(cfg)
	if err != nil {
		t.Fatalf("NewPool: %v", err)
	}
	t.Cleanup(func() { within(t, 5*time.Second, "Pool.Close", func() { p.Close() }) })
	return p
}

// within runs fn and fails the test if it takes longer than d.
func within(t testing.TB, d time.Duration, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Errorf("%s took longer than %v", what, d)
		<-done
	}
}

// waitFor polls cond until it holds or d passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// recvWithin waits for one value from ch.
func recvWithin[T any](t testing.TB, ch <-chan T, d time.Duration, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(d):
		t.Fatalf("timed out after %v waiting for %s", d, what)
	}
	var zero T
	return zero
}

// ctxT returns a context ending with the test, bounded by d.
func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// mustContain fails unless s contains every part.
func mustContain(t testing.TB, s string, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(s, p) {
			t.Fatalf("%q not found in:\n%s", p, s)
		}
	}
}

// runtimeMem reads the process's cumulative allocation.
type runtimeMem struct{ total uint64 }

func (m *runtimeMem) read() {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m.total = ms.TotalAlloc
}
