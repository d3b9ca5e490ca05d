// Package testcluster starts in-process Corral clusters for tests: N real
// agents with their own data dirs (raft-boltdb files), TCP raft transport,
// HTTP API and Serf on 127.0.0.1, with short timeouts.
package testcluster

import (
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/corral-dev/corral/daemon"
	"github.com/corral-dev/corral/daemon/api"
	"github.com/corral-dev/corral/daemon/certs"
	"github.com/corral-dev/corral/daemon/config"
	"github.com/corral-dev/corral/internal/freeport"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// Options shapes a cluster.
type Options struct {
	// Nodes is the number of agents (default 3).
	Nodes int
	// Configure may adjust each node's config before it starts.
	Configure func(i int, c *config.Config)
	// LogLevel of the agents' loggers (default "warn").
	LogLevel string
	// Builtins runs the built-in plugins (exec, http, echo) on every node,
	// served by a corral binary built once per test process.
	Builtins bool
	// SecureDefaults keeps the secure defaults of a production agent: ACLs
	// on and exec off. Without it every node has acl { enabled = false }
	// and plugin "exec" { enabled = true } before Configure runs.
	SecureDefaults bool
}

// Cluster is a set of in-process agents.
type Cluster struct {
	t     testing.TB
	opts  Options
	out   *testWriter
	Nodes []*Node
}

// Node is one agent of the cluster.
type Node struct {
	Name   string
	Config *config.Config
	Agent  *daemon.Agent
	Client *api.Client
}

// Start starts the cluster: node 0 bootstraps itself, the others are added
// by the leader with AddVoter. It waits until every node is a voter and
// knows the leader. Everything is stopped by t.Cleanup.
func Start(t testing.TB, opts Options) *Cluster {
	t.Helper()
	if opts.Nodes == 0 {
		opts.Nodes = 3
	}
	if opts.LogLevel == "" {
		opts.LogLevel = "warn"
	}
	c := &Cluster{t: t, opts: opts, out: &testWriter{t: t}}
	t.Cleanup(c.out.close) // runs after Stop (cleanups run last-in first-out)
	t.Cleanup(c.Stop)
	base := t.TempDir()
	var firstSerf string
	for i := 0; i < opts.Nodes; i++ {
		cfg := config.Default()
		cfg.NodeName = fmt.Sprintf("node-%d", i)
		cfg.DataDir = filepath.Join(base, cfg.NodeName)
		cfg.BindAddr = "127.0.0.1"
		// HTTP and raft listen on port 0 (the agent takes what the system
		// gives, with no window for another process to take it); Serf
		// needs its port up front. startNode records the ports in use.
		cfg.Ports = config.Ports{Serf: freePort(t)}
		cfg.Raft.HeartbeatTimeout = 500 * time.Millisecond
		cfg.Raft.ElectionTimeout = 500 * time.Millisecond
		// As long as the heartbeat timeout: a shorter lease made leaders
		// on a loaded CI machine step down at every late answer.
		cfg.Raft.LeaderLeaseTimeout = 500 * time.Millisecond
		cfg.Server.BootstrapExpect = 0
		if i == 0 {
			cfg.Server.BootstrapExpect = 1
			firstSerf = fmt.Sprintf("127.0.0.1:%d", cfg.Ports.Serf)
		} else {
			cfg.Server.RetryJoin = []string{firstSerf}
		}
		if !opts.SecureDefaults {
			on := true
			exec := config.DefaultPlugin("exec")
			exec.Enabled = &on
			cfg.ACL.Enabled = false
			cfg.Plugins["exec"] = exec
		}
		if opts.Configure != nil {
			opts.Configure(i, cfg)
		}
		n := &Node{Name: cfg.NodeName, Config: cfg}
		c.Nodes = append(c.Nodes, n)
		c.startNode(n)
	}
	leader := c.Leader()
	for _, n := range c.Nodes {
		if n == leader {
			continue
		}
		err := leader.Agent.Raft().AddVoter(raft.ServerID(n.Agent.NodeID()), raft.ServerAddress(n.Agent.RaftAddr()), 0, 10*time.Second).Error()
		if err != nil {
			t.Fatalf("add voter %s: %v", n.Name, err)
		}
	}
	c.WaitForVoters(opts.Nodes)
	return c
}

func (c *Cluster) startNode(n *Node) {
	c.t.Helper()
	logger := hclog.New(&hclog.LoggerOptions{Name: n.Name, Level: hclog.LevelFromString(c.opts.LogLevel), Output: c.out})
	opt := daemon.WithoutBuiltins()
	if c.opts.Builtins {
		opt = daemon.WithPluginExe(CorralBinary(c.t))
	}
	a, err := daemon.New(n.Config.Clone(), logger, opt)
	if err != nil {
		c.t.Fatalf("new agent %s: %v", n.Name, err)
	}
	if err := a.Start(); err != nil {
		c.t.Fatalf("start agent %s: %v", n.Name, err)
	}
	// A restart keeps the node's addresses (raft knows it by them).
	n.Config.Ports.HTTP = portOf(c.t, a.HTTPAddr())
	n.Config.Ports.Raft = portOf(c.t, a.RaftAddr())
	n.Agent = a
	scheme := "http://"
	if n.Config.TLS.HTTP {
		scheme = "https://"
	}
	n.Client, err = api.NewClient(scheme+a.HTTPAddr(), "")
	if err != nil {
		c.t.Fatalf("client for %s: %v", n.Name, err)
	}
	if n.Config.TLS.HTTP {
		tc, err := certs.ClientConfig(n.Config.TLS.CAFile, "", "")
		if err != nil {
			c.t.Fatalf("https client for %s: %v", n.Name, err)
		}
		n.Client.SetTLSConfig(tc)
	}
}

// Leader waits (up to 15s) until one running node is leader and every
// running node agrees on it, and returns it.
func (c *Cluster) Leader() *Node {
	c.t.Helper()
	var leader *Node
	c.Eventually(15*time.Second, "a leader every node agrees on", func() bool {
		leader = nil
		var leaderID raft.ServerID
		for _, n := range c.Nodes {
			if n.Agent == nil {
				continue
			}
			_, id := n.Agent.Raft().LeaderWithID()
			if id == "" || (leaderID != "" && id != leaderID) {
				return false
			}
			leaderID = id
			if n.Agent.Raft().State() == raft.Leader {
				leader = n
			}
		}
		return leader != nil && string(leaderID) == leader.Agent.NodeID()
	})
	return leader
}

// Follower waits for a leader every node agrees on and returns the first
// node, in order, that is not it.
func (c *Cluster) Follower() *Node {
	c.t.Helper()
	leader := c.Leader()
	for _, n := range c.Nodes {
		if n != leader {
			return n
		}
	}
	c.t.Fatalf("a %d-node cluster has no follower", len(c.Nodes))
	return nil
}

// WaitForVoters waits until the leader's configuration has n voters.
func (c *Cluster) WaitForVoters(n int) {
	c.t.Helper()
	c.Eventually(20*time.Second, fmt.Sprintf("%d voters", n), func() bool {
		l := c.Leader()
		fut := l.Agent.Raft().GetConfiguration()
		if fut.Error() != nil {
			return false
		}
		voters := 0
		for _, s := range fut.Configuration().Servers {
			if s.Suffrage == raft.Voter {
				voters++
			}
		}
		return voters == n
	})
}

// Stop shuts every running node down.
func (c *Cluster) Stop() {
	for _, n := range c.Nodes {
		c.StopNode(n)
	}
}

// StopNode shuts one node down (no leave), as a crash would look to raft.
func (c *Cluster) StopNode(n *Node) {
	if n.Agent == nil {
		return
	}
	if err := n.Agent.Shutdown(); err != nil {
		c.t.Logf("shutdown %s: %v", n.Name, err)
	}
	n.Agent = nil
}

// RestartNode starts a stopped node again on the same data dir and ports.
func (c *Cluster) RestartNode(n *Node) {
	c.t.Helper()
	if n.Agent != nil {
		c.t.Fatalf("%s is running", n.Name)
	}
	c.startNode(n)
}

// WaitCaughtUp waits until every running node has applied everything
// the leader had applied when it was called: a follower learns of a
// commit only with the leader's next AppendEntries.
func (c *Cluster) WaitCaughtUp() {
	c.t.Helper()
	want := c.Leader().Agent.Store().Index()
	for _, n := range c.Nodes {
		if n.Agent == nil {
			continue
		}
		c.Eventually(30*time.Second, n.Name+" caught up", func() bool {
			return n.Agent.Store().Index() >= want
		})
	}
}

// Eventually polls cond until it holds or the timeout passes.
func (c *Cluster) Eventually(timeout time.Duration, what string, cond func() bool) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			c.t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// portOf returns the port of a host:port address.
func portOf(t testing.TB, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	return port
}

func freePort(t testing.TB) int {
	t.Helper()
	ports, err := freeport.Take(1)
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	return ports[0]
}

// testWriter sends agent logs to the test log until the test ends.
type testWriter struct {
	mu     sync.Mutex
	t      testing.TB
	closed bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closed {
		w.t.Logf("%s", p)
	}
	return len(p), nil
}

func (w *testWriter) close() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
}
