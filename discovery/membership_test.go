package discovery

import (
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

func TestBootstrapExpectFormsClusterFromSerfJoins(t *testing.T) {
	c := newTestCluster(t)
	nodes := c.startCluster(3, defaultNodeOptions())

	c.waitVoters(15*time.Second, nodes, nil)
	c.apply()
	for _, n := range nodes {
		n := n
		waitFor(t, 5*time.Second, n.name+" to replicate the entry", func() bool { return n.fsm.count() >= 1 })
		if n.hadState {
			t.Errorf("%s: fresh node started with raft state", n.name)
		}
	}
	// Every node now advertises that it has a raft configuration.
	waitFor(t, 5*time.Second, "bootstrapped tags on all members", func() bool {
		for _, m := range nodes[0].agent.Members() {
			if m.Tags[TagBootstrapped] != "1" {
				return false
			}
		}
		return true
	})
}

func TestBootstrapBlockedByExpectMismatch(t *testing.T) {
	c := newTestCluster(t)
	opts := defaultNodeOptions()
	a := c.addNode(opts)
	b := c.addNode(opts)
	odd := opts
	odd.expect = 2
	x := c.addNode(odd)
	b.join(a)
	x.join(a)

	waitFor(t, 10*time.Second, "all three members alive everywhere", func() bool {
		for _, n := range []*testNode{a, b, x} {
			alive := 0
			for _, m := range n.agent.Members() {
				if m.Status == StatusAlive {
					alive++
				}
			}
			if alive != 3 {
				return false
			}
		}
		return true
	})
	// Every node's bootstrap check has seen the disagreement and decided to
	// wait (the rule puts agreement before the count, so it holds whatever
	// members each node had seen by then); none may have bootstrapped.
	waitFor(t, 10*time.Second, "every node to log that bootstrap_expect disagrees", func() bool {
		for _, n := range []*testNode{a, b, x} {
			if n.mgr.hasConfiguration() {
				t.Fatalf("%s bootstrapped although bootstrap_expect disagrees", n.name)
			}
			if !n.logs.has("bootstrap waiting", "all servers must agree") {
				return false
			}
		}
		return true
	})
	for _, n := range []*testNode{a, b, x} {
		if n.mgr.hasConfiguration() {
			t.Fatalf("%s bootstrapped although bootstrap_expect disagrees", n.name)
		}
	}

	// Fixing the odd node's bootstrap_expect unblocks bootstrap.
	x.kill()
	x.opts.expect = 3
	x.start()
	c.waitVoters(15*time.Second, []*testNode{a, b, x}, nil)
}

func TestJoinAsNonVoterThenPromotedAfterStabilization(t *testing.T) {
	c := newTestCluster(t)
	opts := defaultNodeOptions()
	nodes := c.startCluster(3, opts)
	c.waitVoters(15*time.Second, nodes, nil)
	waitAutopilotSettled(t, c, opts.stabilization)

	// The newcomer has bootstrap_expect=3 too; it must see the existing
	// cluster and join it instead of bootstrapping.
	d := c.addNode(opts)
	d.join(nodes[0])

	var addedAt time.Time
	waitFor(t, 10*time.Second, "newcomer in the raft configuration", func() bool {
		got, _ := c.suffrages()
		s, ok := got[d.id]
		if ok && s != raft.Nonvoter {
			t.Fatalf("newcomer joined as %v, want non-voter first", s)
		}
		if ok {
			addedAt = time.Now()
		}
		return ok
	})
	c.waitVoters(15*time.Second, append(nodes, d), nil)
	if gap := time.Since(addedAt); gap < opts.stabilization-200*time.Millisecond {
		t.Fatalf("promoted %s after being added, want at least the %s stabilization time", gap, opts.stabilization)
	}
	waitFor(t, 5*time.Second, "newcomer to advertise it has a raft configuration", func() bool {
		for _, m := range nodes[0].agent.Members() {
			if m.Name == d.name {
				return m.Tags[TagBootstrapped] == "1"
			}
		}
		return false
	})
}

func TestMaxVotersKeepsExtraNonVoterUntilAVoterLeaves(t *testing.T) {
	c := newTestCluster(t)
	opts := defaultNodeOptions()
	opts.maxVoters = 3
	opts.cleanupAfter = time.Minute
	opts.noStats = true // also covers health from raft's own view
	nodes := c.startCluster(3, opts)
	c.waitVoters(15*time.Second, nodes, nil)
	d := c.addNode(opts)
	d.join(nodes[0])
	c.waitVoters(10*time.Second, nodes, []*testNode{d})

	// Wait until autopilot has seen the newcomer healthy for well over the
	// stabilization time: without the cap it would be a voter by now.
	waitFor(t, 15*time.Second, "newcomer stable in autopilot", func() bool {
		l := c.leader()
		if l == nil {
			return false
		}
		st := l.mgr.AutopilotState()
		if st == nil {
			return false
		}
		srv, ok := st.Servers[raft.ServerID(d.id)]
		return ok && srv.Health.Healthy && time.Since(srv.Health.StableSince) > 2*opts.stabilization
	})
	c.waitVoters(time.Second, nodes, []*testNode{d})

	// A follower voter leaves gracefully: it is removed and the
	// non-voter takes its place.
	var leaving *testNode
	for _, n := range nodes {
		if n.raft.State() != raft.Leader {
			leaving = n
			break
		}
	}
	if err := leaving.leave(); err != nil {
		t.Fatalf("leave: %v", err)
	}
	var rest []*testNode
	for _, n := range nodes {
		if n != leaving {
			rest = append(rest, n)
		}
	}
	c.waitVoters(10*time.Second, append(rest, d), nil)
}

func TestGracefulLeaveOfLeaderRemovesItAtOnce(t *testing.T) {
	c := newTestCluster(t)
	opts := defaultNodeOptions()
	opts.cleanupAfter = time.Minute // only the leave path can remove it in time
	nodes := c.startCluster(3, opts)
	c.waitVoters(15*time.Second, nodes, nil)

	old := c.leader()
	if old == nil {
		t.Fatal("no leader")
	}
	start := time.Now()
	if err := old.leave(); err != nil {
		t.Fatalf("leave: %v", err)
	}
	var rest []*testNode
	for _, n := range nodes {
		if n != old {
			rest = append(rest, n)
		}
	}
	c.waitVoters(10*time.Second, rest, nil)
	if took := time.Since(start); took > 15*time.Second {
		t.Fatalf("leave took %s", took)
	}
	l := c.leader()
	if l == nil || l == old {
		t.Fatalf("leadership did not move off the leaving node")
	}
	waitFor(t, 5*time.Second, "OnNodeFailed for the left node on the new leader", func() bool {
		_, ok := l.failedAt(old.id)
		return ok
	})
}

func TestFailedNodeReportedThenCleanedUpThenReaddedOnRestart(t *testing.T) {
	c := newTestCluster(t)
	opts := defaultNodeOptions()
	nodes := c.startCluster(3, opts)
	c.waitVoters(15*time.Second, nodes, nil)
	c.apply()

	var victim *testNode
	for _, n := range nodes {
		if n.raft.State() != raft.Leader {
			victim = n
			break
		}
	}
	killedAt := time.Now()
	victim.kill()

	var failedAt time.Time
	waitFor(t, 8*time.Second, "OnNodeFailed on the leader", func() bool {
		l := c.leader()
		if l == nil {
			return false
		}
		at, ok := l.failedAt(victim.id)
		failedAt = at
		return ok
	})
	t.Logf("failure reported %s after the kill", failedAt.Sub(killedAt))
	if got, _ := c.suffrages(); got[victim.id] != raft.Voter || !hasServer(got, victim) {
		t.Fatalf("failed node removed from raft before dead_server_cleanup_after: %v", got)
	}

	var rest []*testNode
	for _, n := range nodes {
		if n != victim {
			rest = append(rest, n)
		}
	}
	c.waitVoters(15*time.Second, rest, nil)
	if gap := time.Since(failedAt); gap < opts.cleanupAfter-300*time.Millisecond {
		t.Fatalf("removed %s after the failure, want at least %s", gap, opts.cleanupAfter)
	}

	// Commit something it has not seen, then restart it from its data dir
	// with no join addresses: it has raft state (so must not bootstrap),
	// rejoins through the Serf snapshot and is re-added.
	c.apply()
	victim.start()
	if !victim.hadState {
		t.Fatal("restarted node has no raft state")
	}
	c.waitVoters(20*time.Second, nodes, nil)
	c.apply()
	l := c.leader()
	want := l.fsm.count()
	waitFor(t, 10*time.Second, "restarted node to catch up", func() bool { return victim.fsm.count() >= want })
}

// TestFailedNodeKeptWhenMinQuorumWouldBreak: with min_quorum 3 and three
// voters plus a standby non-voter (max_voters 3), a failed voter is kept
// past dead_server_cleanup_after. Corral counts voters; raft-autopilot's
// own guard counts the non-voter as a potential voter (4 - 1 >= 3) and
// would let the removal through, so this depends on Corral's guard.
func TestFailedNodeKeptWhenMinQuorumWouldBreak(t *testing.T) {
	c := newTestCluster(t)
	opts := defaultNodeOptions()
	opts.minQuorum = 3
	opts.maxVoters = 3
	nodes := c.startCluster(3, opts)
	c.waitVoters(15*time.Second, nodes, nil)
	standby := c.addNode(opts)
	standby.join(nodes[0])
	c.waitVoters(15*time.Second, nodes, []*testNode{standby})

	var victim *testNode
	for _, n := range nodes {
		if n.raft.State() != raft.Leader {
			victim = n
			break
		}
	}
	victim.kill()
	// The leader's promoter logs each round in which the victim is due for
	// cleanup (failed for longer than dead_server_cleanup_after) but kept
	// for quorum. Any removal before that is a failure.
	waitFor(t, 20*time.Second, "the leader to keep the failed voter for quorum", func() bool {
		got, l := c.suffrages()
		if got == nil {
			return false
		}
		if !hasServer(got, victim) || got[victim.id] != raft.Voter {
			t.Fatalf("failed voter removed below min_quorum: %v", got)
		}
		return l.logs.has("keeping failed voter", string(victim.id))
	})
	if got, _ := c.suffrages(); got != nil && (!hasServer(got, victim) || got[victim.id] != raft.Voter) {
		t.Fatalf("failed voter removed below min_quorum: %v", got)
	}
	if l := c.leader(); l == nil || !l.logs.has("min_quorum=3") {
		t.Fatal("the keep decision was not logged with min_quorum=3")
	}
}

// waitAutopilotSettled waits until the leader's autopilot has tracked every
// server as healthy for longer than the stabilization time, so that later
// promotions really wait for it.
func waitAutopilotSettled(t *testing.T, c *testCluster, stabilization time.Duration) {
	t.Helper()
	waitFor(t, 15*time.Second, "autopilot settled", func() bool {
		l := c.leader()
		if l == nil {
			return false
		}
		st := l.mgr.AutopilotState()
		if st == nil || len(st.Servers) == 0 {
			return false
		}
		for _, srv := range st.Servers {
			if !srv.Health.Healthy || time.Since(srv.Health.StableSince) <= stabilization+200*time.Millisecond {
				return false
			}
		}
		return true
	})
}

// hasServer reports whether n is in a configuration from c.suffrages (a
// missing ID reads as the zero suffrage, raft.Voter).
func hasServer(got map[string]raft.ServerSuffrage, n *testNode) bool {
	_, ok := got[n.id]
	return ok
}
