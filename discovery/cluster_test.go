package discovery

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	autopilot "github.com/hashicorp/raft-autopilot"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// This file is the in-process cluster helper: every node has a real raft
// (BoltStore files, TCP transport on 127.0.0.1), a real Serf agent on
// 127.0.0.1 with Fast timings, a Manager and a leader-watch goroutine that
// does what the daemon does (Barrier, LeaderStart, LeaderStop).

// nodeOptions are the per-node knobs the tests vary.
type nodeOptions struct {
	expect        int
	maxVoters     int
	minQuorum     int
	stabilization time.Duration
	cleanupAfter  time.Duration
	// noStats leaves ManagerConfig.StatsFetcher nil (alive means healthy).
	noStats bool
}

func defaultNodeOptions() nodeOptions {
	return nodeOptions{
		expect:        3,
		maxVoters:     5,
		stabilization: time.Second,
		cleanupAfter:  2 * time.Second,
	}
}

// testLogger returns a logger that prints only when CORRAL_TEST_LOG is set
// (to a level name such as "debug").
func testLogger(name string) hclog.Logger {
	lvl := os.Getenv("CORRAL_TEST_LOG")
	if lvl == "" {
		return hclog.NewNullLogger()
	}
	return hclog.New(&hclog.LoggerOptions{Name: name, Level: hclog.LevelFromString(lvl), Output: os.Stderr})
}

// trivialFSM counts applied entries.
type trivialFSM struct {
	mu      sync.Mutex
	applied int
}

func (f *trivialFSM) Apply(*raft.Log) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applied++
	return nil
}

func (f *trivialFSM) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.applied
}

func (f *trivialFSM) Snapshot() (raft.FSMSnapshot, error) { return noopSnapshot{}, nil }
func (f *trivialFSM) Restore(rc io.ReadCloser) error      { return rc.Close() }

type noopSnapshot struct{}

func (noopSnapshot) Persist(sink raft.SnapshotSink) error { return sink.Close() }
func (noopSnapshot) Release()                             {}

type testCluster struct {
	t *testing.T

	mu    sync.Mutex
	nodes []*testNode
}

type testNode struct {
	c    *testCluster
	name string
	id   string
	dir  string
	opts nodeOptions

	// Fixed after the first start so that a restart keeps its addresses.
	raftAddr string
	serfPort int

	mu        sync.Mutex
	running   bool
	raft      *raft.Raft
	fsm       *trivialFSM
	transport *raft.NetworkTransport
	store     *raftboltdb.BoltStore
	agent     *Agent
	mgr       *Manager
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	hadState  bool

	failedMu sync.Mutex
	failed   map[string]time.Time // node ID -> first OnNodeFailed call

	// logs keeps the debug log of the node's agent and manager (all its
	// runs), so tests can wait for a decision the manager logged.
	logs logLines
}

// logLines is an io.Writer that keeps log lines.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, string(p))
	return len(p), nil
}

// has reports whether a line contains every one of subs.
func (l *logLines) has(subs ...string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
next:
	for _, line := range l.lines {
		for _, s := range subs {
			if !strings.Contains(line, s) {
				continue next
			}
		}
		return true
	}
	return false
}

// nodeLogger logs at debug level into n.logs, and also to stderr when
// CORRAL_TEST_LOG is set.
func (n *testNode) nodeLogger() hclog.Logger {
	var out io.Writer = &n.logs
	if os.Getenv("CORRAL_TEST_LOG") != "" {
		out = io.MultiWriter(&n.logs, os.Stderr)
	}
	return hclog.New(&hclog.LoggerOptions{Name: n.name, Level: hclog.Debug, Output: out})
}

func newTestCluster(t *testing.T) *testCluster {
	t.Helper()
	c := &testCluster{t: t}
	t.Cleanup(func() {
		c.mu.Lock()
		nodes := append([]*testNode(nil), c.nodes...)
		c.mu.Unlock()
		for _, n := range nodes {
			n.kill()
		}
	})
	return c
}

// addNode creates and starts a node.
func (c *testCluster) addNode(opts nodeOptions) *testNode {
	c.t.Helper()
	c.mu.Lock()
	i := len(c.nodes)
	n := &testNode{
		c:      c,
		name:   "node-" + strconv.Itoa(i),
		id:     fmt.Sprintf("id-%02d", i),
		dir:    c.t.TempDir(),
		opts:   opts,
		failed: make(map[string]time.Time),
	}
	c.nodes = append(c.nodes, n)
	c.mu.Unlock()
	n.start()
	return n
}

// startCluster starts n nodes with opts and joins them all to the first.
func (c *testCluster) startCluster(n int, opts nodeOptions) []*testNode {
	c.t.Helper()
	nodes := make([]*testNode, n)
	for i := range nodes {
		nodes[i] = c.addNode(opts)
	}
	for _, node := range nodes[1:] {
		node.join(nodes[0])
	}
	return nodes
}

// fetchStats is the StatsFetcher: it reads the target node's raft stats
// in-process, as the daemon would over HTTP.
func (c *testCluster) fetchStats(ctx context.Context, m Member) (*autopilot.ServerStats, error) {
	c.mu.Lock()
	nodes := append([]*testNode(nil), c.nodes...)
	c.mu.Unlock()
	for _, n := range nodes {
		if n.id != m.Tags[TagID] {
			continue
		}
		n.mu.Lock()
		r, running := n.raft, n.running
		n.mu.Unlock()
		if !running {
			return nil, errors.New("node is down")
		}
		return LocalStats(r)
	}
	return nil, fmt.Errorf("unknown node %s", m.Name)
}

func (n *testNode) start() {
	t := n.c.t
	t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()

	store, err := raftboltdb.NewBoltStore(filepath.Join(n.dir, "raft.db"))
	if err != nil {
		t.Fatalf("%s: bolt store: %v", n.name, err)
	}
	snaps, err := raft.NewFileSnapshotStore(n.dir, 1, io.Discard)
	if err != nil {
		t.Fatalf("%s: snapshot store: %v", n.name, err)
	}
	hasState, err := raft.HasExistingState(store, store, snaps)
	if err != nil {
		t.Fatalf("%s: has existing state: %v", n.name, err)
	}
	bind := n.raftAddr
	if bind == "" {
		bind = "127.0.0.1:0"
	}
	transport, err := raft.NewTCPTransport(bind, nil, 3, 2*time.Second, io.Discard)
	if err != nil {
		t.Fatalf("%s: raft transport: %v", n.name, err)
	}
	n.raftAddr = string(transport.LocalAddr())

	conf := raft.DefaultConfig()
	conf.LocalID = raft.ServerID(n.id)
	conf.HeartbeatTimeout = 300 * time.Millisecond
	conf.ElectionTimeout = 300 * time.Millisecond
	conf.LeaderLeaseTimeout = 150 * time.Millisecond
	conf.CommitTimeout = 10 * time.Millisecond
	conf.ShutdownOnRemove = false
	conf.SnapshotThreshold = 1 << 20
	conf.Logger = testLogger(n.name + ".raft")
	fsm := &trivialFSM{}
	r, err := raft.NewRaft(conf, fsm, store, store, snaps, transport)
	if err != nil {
		t.Fatalf("%s: new raft: %v", n.name, err)
	}

	logger := n.nodeLogger()
	agent, err := NewAgent(AgentConfig{
		NodeName:        n.name,
		NodeID:          n.id,
		BindAddr:        "127.0.0.1",
		BindPort:        n.serfPort,
		RaftAddr:        n.raftAddr,
		HTTPAddr:        "127.0.0.1:4780",
		BootstrapExpect: n.opts.expect,
		Bootstrapped:    hasState,
		Plugins:         []string{"echo", "exec"},
		SnapshotPath:    filepath.Join(n.dir, "serf", "local.snapshot"),
		Logger:          logger,
		Fast:            true,
	})
	if err != nil {
		_ = r.Shutdown().Error()
		t.Fatalf("%s: new agent: %v", n.name, err)
	}
	n.serfPort = agent.LocalMember().Port

	var fetcher StatsFetcher
	if !n.opts.noStats {
		fetcher = n.c.fetchStats
	}
	mgr, err := NewManager(ManagerConfig{
		Raft:                       r,
		Agent:                      agent,
		NodeID:                     n.id,
		RaftHasState:               hasState,
		BootstrapExpect:            n.opts.expect,
		MaxVoters:                  n.opts.maxVoters,
		MinQuorum:                  n.opts.minQuorum,
		ServerStabilizationTime:    n.opts.stabilization,
		DeadServerCleanupAfter:     n.opts.cleanupAfter,
		LastContactThreshold:       time.Second,
		ReconcileInterval:          time.Second,
		AutopilotUpdateInterval:    200 * time.Millisecond,
		AutopilotReconcileInterval: 300 * time.Millisecond,
		StatsFetcher:               fetcher,
		OnNodeFailed:               n.recordFailed,
		Logger:                     logger,
	})
	if err != nil {
		t.Fatalf("%s: new manager: %v", n.name, err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	n.raft, n.fsm, n.transport, n.store, n.agent, n.mgr, n.cancel = r, fsm, transport, store, agent, mgr, cancel
	n.hadState = hasState
	n.running = true
	n.wg.Add(2)
	go func() {
		defer n.wg.Done()
		mgr.Run(ctx)
	}()
	go func() {
		defer n.wg.Done()
		watchLeadership(ctx, r, mgr)
	}()
}

// watchLeadership is the daemon's leader loop in miniature.
func watchLeadership(ctx context.Context, r *raft.Raft, m *Manager) {
	for {
		select {
		case <-ctx.Done():
			m.LeaderStop()
			return
		case isLeader := <-r.LeaderCh():
			if !isLeader {
				m.LeaderStop()
				continue
			}
			if err := r.Barrier(5 * time.Second).Error(); err != nil {
				continue
			}
			m.LeaderStart()
		}
	}
}

func (n *testNode) recordFailed(id, _ string) {
	n.failedMu.Lock()
	defer n.failedMu.Unlock()
	if _, ok := n.failed[id]; !ok {
		n.failed[id] = time.Now()
	}
}

// failedAt reports when this node first called OnNodeFailed for id.
func (n *testNode) failedAt(id string) (time.Time, bool) {
	n.failedMu.Lock()
	defer n.failedMu.Unlock()
	at, ok := n.failed[id]
	return at, ok
}

func (n *testNode) join(to *testNode) {
	n.c.t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", to.serfPort)
	if _, err := n.agent.Join([]string{addr}); err != nil {
		n.c.t.Fatalf("%s: join %s: %v", n.name, addr, err)
	}
}

// kill stops the node without a leave: peers see it fail.
func (n *testNode) kill() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.running {
		return
	}
	n.running = false
	_ = n.agent.Shutdown()
	n.cancel()
	n.wg.Wait()
	_ = n.raft.Shutdown().Error()
	_ = n.transport.Close()
	_ = n.store.Close()
}

// leave leaves gracefully through the Manager, then stops the node.
func (n *testNode) leave() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := n.mgr.Leave(ctx)
	n.kill()
	return err
}

func (n *testNode) isRunning() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.running
}

// leader returns the running node that is raft leader, or nil.
func (c *testCluster) leader() *testNode {
	c.mu.Lock()
	nodes := append([]*testNode(nil), c.nodes...)
	c.mu.Unlock()
	for _, n := range nodes {
		if n.isRunning() && n.raft.State() == raft.Leader {
			return n
		}
	}
	return nil
}

// suffrages returns the leader's raft configuration as id -> suffrage.
func (c *testCluster) suffrages() (map[string]raft.ServerSuffrage, *testNode) {
	l := c.leader()
	if l == nil {
		return nil, nil
	}
	f := l.raft.GetConfiguration()
	if f.Error() != nil {
		return nil, nil
	}
	out := make(map[string]raft.ServerSuffrage)
	for _, s := range f.Configuration().Servers {
		out[string(s.ID)] = s.Suffrage
	}
	return out, l
}

// waitFor polls cond every 50ms until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitVoters waits until the leader's configuration is exactly the given
// voters and non-voters.
func (c *testCluster) waitVoters(timeout time.Duration, voters, nonVoters []*testNode) {
	c.t.Helper()
	want := make(map[string]raft.ServerSuffrage)
	for _, n := range voters {
		want[n.id] = raft.Voter
	}
	for _, n := range nonVoters {
		want[n.id] = raft.Nonvoter
	}
	deadline := time.Now().Add(timeout)
	for {
		got, _ := c.suffrages()
		if sameSuffrages(got, want) {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("timed out after %s waiting for raft configuration %v; last seen %v", timeout, want, got)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func sameSuffrages(got, want map[string]raft.ServerSuffrage) bool {
	if len(got) != len(want) {
		return false
	}
	for id, s := range want {
		if v, ok := got[id]; !ok || v != s {
			return false
		}
	}
	return true
}

// apply commits an entry through the leader.
func (c *testCluster) apply() {
	c.t.Helper()
	waitFor(c.t, 10*time.Second, "an entry applied through the leader", func() bool {
		l := c.leader()
		return l != nil && l.raft.Apply([]byte("x"), 2*time.Second).Error() == nil
	})
}
