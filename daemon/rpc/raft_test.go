package rpc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// addrSet is a goroutine-safe set of connection addresses.
type addrSet struct {
	mu sync.Mutex
	m  map[string]bool
}

func (a *addrSet) add(addr net.Addr) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.m == nil {
		a.m = map[string]bool{}
	}
	a.m[addr.String()] = true
}

func (a *addrSet) list() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var l []string
	for k := range a.m {
		l = append(l, k)
	}
	return l
}

func (a *addrSet) has(addr string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.m[addr]
}

// countingLayer records the local address of every connection raft dials
// and the remote address of every connection raft accepts, so the test can
// check that raft accepted only connections that raft dialed.
type countingLayer struct {
	raft.StreamLayer
	dialed   *addrSet
	accepted *addrSet
}

func (l *countingLayer) Dial(a raft.ServerAddress, d time.Duration) (net.Conn, error) {
	c, err := l.StreamLayer.Dial(a, d)
	if err == nil {
		l.dialed.add(c.LocalAddr())
	}
	return c, err
}

func (l *countingLayer) Accept() (net.Conn, error) {
	c, err := l.StreamLayer.Accept()
	if err == nil {
		l.accepted.add(c.RemoteAddr())
	}
	return c, err
}

// counterFSM counts applied entries.
type counterFSM struct {
	mu  sync.Mutex
	sum int
}

func (f *counterFSM) Apply(l *raft.Log) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sum++
	return f.sum
}

func (f *counterFSM) value() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sum
}

func (f *counterFSM) Snapshot() (raft.FSMSnapshot, error) { return nil, errors.New("no snapshots") }
func (f *counterFSM) Restore(io.ReadCloser) error         { return errors.New("no snapshots") }

// TestRaftAndRPCOnOnePort runs a real 3-node raft (in-memory stores,
// NetworkTransport over RaftLayer) while the same ports carry RPC calls and
// a dispatch-like stream; raft elects, replicates, and never accepts a
// connection that was not dialed as raft.
func TestRaftAndRPCOnOnePort(t *testing.T) {
	t.Run("plain", func(t *testing.T) { testRaftAndRPC(t, false) })
	t.Run("tls", func(t *testing.T) { testRaftAndRPC(t, true) })
}

func testRaftAndRPC(t *testing.T, withTLS bool) {
	const size = 3
	cfg := testConfig(t, nil)
	if withTLS {
		ca := newTestCA(t)
		cfg = tlsConfig(cfg, ca, ca.issue(t, testServerName))
	}
	var dialed, accepted addrSet
	nodes := make([]*node, size)
	layers := make([]*countingLayer, size)
	rafts := make([]*raft.Raft, size)
	fsms := make([]*counterFSM, size)
	transports := make([]*raft.NetworkTransport, size)
	var servers []raft.Server
	for i := range nodes {
		nodes[i] = mustNode(t, cfg, "127.0.0.1:0")
		layers[i] = &countingLayer{StreamLayer: nodes[i].mux.RaftLayer(), dialed: &dialed, accepted: &accepted}
		servers = append(servers, raft.Server{
			ID:      raft.ServerID(fmt.Sprint("n", i)),
			Address: raft.ServerAddress(nodes[i].addr),
		})
	}
	rlog := hclog.New(&hclog.LoggerOptions{Name: "raft", Output: io.Discard, Level: hclog.Error})
	for i := range nodes {
		transports[i] = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
			Stream:  layers[i],
			MaxPool: 3,
			Timeout: 5 * time.Second,
			Logger:  rlog,
		})
		rc := raft.DefaultConfig()
		rc.LocalID = servers[i].ID
		rc.Logger = rlog
		rc.HeartbeatTimeout = 300 * time.Millisecond
		rc.ElectionTimeout = 300 * time.Millisecond
		rc.LeaderLeaseTimeout = 300 * time.Millisecond
		store := raft.NewInmemStore()
		fsms[i] = &counterFSM{}
		if err := raft.BootstrapCluster(rc, store, store, raft.NewInmemSnapshotStore(), transports[i],
			raft.Configuration{Servers: servers}); err != nil {
			t.Fatal(err)
		}
		r, err := raft.NewRaft(rc, fsms[i], store, store, raft.NewInmemSnapshotStore(), transports[i])
		if err != nil {
			t.Fatal(err)
		}
		rafts[i] = r
	}
	// Shut raft down, all nodes at once, and close the transports and the
	// ports right away rather than after Shutdown returns: in raft v1.7.3 a
	// leader whose peer's raft has stopped while the peer's transport still
	// accepts keeps pipelining AppendEntries that are never answered; once
	// 128 are in flight the replication goroutine blocks for good and the
	// leader's Shutdown never returns.
	t.Cleanup(func() {
		futures := make([]raft.Future, len(rafts))
		for i, r := range rafts {
			futures[i] = r.Shutdown()
		}
		for i, tr := range transports {
			tr.Close()
			nodes[i].mux.Close()
		}
		within(t, 20*time.Second, "raft shutdown", func() {
			for _, f := range futures {
				f.Error()
			}
		})
	})

	// RPC traffic on the same ports, all the while raft elects and
	// replicates: unary calls between every pair and one long stream.
	ctx, cancel := context.WithCancel(ctxT(t, 60*time.Second))
	pool := mustPool(t, cfg)
	var calls atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, size+1)
	for i := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				var resp echoResp
				err := pool.Call(ctx, nodes[i].addr, methodEcho, &echoReq{ID: uint64(i)}, &resp)
				if err != nil {
					if ctx.Err() == nil {
						errc <- err
					}
					return
				}
				if resp.Req.ID != uint64(i) {
					errc <- fmt.Errorf("wrong answer %d", resp.Req.ID)
					return
				}
				calls.Add(1)
			}
		}()
	}
	s, err := pool.Open(ctx, nodes[0].addr, methodChat)
	if err != nil {
		t.Fatal(err)
	}
	chat(t, s, 300)
	s.Close()

	// Raft elects a leader and replicates entries to every FSM. Under load
	// leadership may move; an entry is then applied again on the new leader
	// (the FSMs count at least every entry).
	const entries = 50
	for i := 0; i < entries; i++ {
		waitFor(t, 20*time.Second, fmt.Sprintf("entry %d to commit", i), func() bool {
			for _, r := range rafts {
				if r.State() == raft.Leader {
					return r.Apply([]byte{byte(i)}, 5*time.Second).Error() == nil
				}
			}
			return false
		})
	}
	waitFor(t, 20*time.Second, "every FSM to apply the entries", func() bool {
		for _, f := range fsms {
			if f.value() < entries {
				return false
			}
		}
		return true
	})
	var leader *raft.Raft
	for _, r := range rafts {
		if r.State() == raft.Leader {
			leader = r
		}
	}
	// A leadership transfer exercises new raft connections while RPC runs.
	if leader == nil {
		t.Log("no leader right now; skipping the leadership transfer")
	} else if err := leader.LeadershipTransfer().Error(); err != nil {
		t.Logf("leadership transfer: %v (not fatal)", err)
	}

	waitFor(t, 20*time.Second, "RPC calls to flow", func() bool { return calls.Load() >= 100 })
	cancel()
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatalf("RPC during raft: %v", err)
	}

	// Every connection raft accepted was dialed by a raft transport, and
	// none of them is one of the pool's RPC sessions.
	rpcAddrs := map[string]bool{}
	pool.mu.Lock()
	for _, e := range pool.conns {
		if e.sess != nil {
			rpcAddrs[e.sess.ys.LocalAddr().String()] = true
		}
	}
	pool.mu.Unlock()
	if len(rpcAddrs) == 0 {
		t.Fatal("no RPC sessions recorded")
	}
	acc := accepted.list()
	for _, a := range acc {
		if rpcAddrs[a] {
			t.Fatalf("raft accepted the RPC session from %s", a)
		}
		// A dial may still be returning on the other side.
		waitFor(t, 5*time.Second, "raft to have dialed "+a, func() bool { return dialed.has(a) })
	}
	var portConns int64
	for _, n := range nodes {
		portConns += n.ln.accepted.Load()
	}
	t.Logf("raft accepted %d connections, all dialed by raft; %d RPC sessions; node ports accepted %d in all; %d RPC calls",
		len(acc), len(rpcAddrs), portConns, calls.Load())
}
