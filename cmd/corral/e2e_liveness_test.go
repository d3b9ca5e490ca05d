package main_test

import (
	"syscall"
	"testing"
	"time"
)

// TestCallsToAPausedLeaderAreAbandoned pauses the leader (SIGSTOP: its
// connections stay open and silent) and checks that the other nodes stop
// waiting on it as soon as they know the new leader: jobs for each of them,
// the new leader included, are claimed, run and reported within a few
// seconds, not after the 40 s an HTTP call to the old leader used to hang.
func TestCallsToAPausedLeaderAreAbandoned(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, clusterOpts{bootstrapExpect: 3, cleanupAfter: time.Minute})
	v := c.waitPeers(30*time.Second, "3 voters and a leader", func(v peersView) bool {
		return v.votersAre("n1", "n2", "n3") && len(v.nonVoters) == 0
	})
	old := c.byName(v.leader)
	others := c.alive(old)
	// A first job on each follower: after it, each one's poll for echo
	// work is a long poll waiting on the leader.
	for _, nd := range others {
		id := submit(t, old, "-constraint", "name="+nd.name, "echo", `{}`)
		eventually(t, 20*time.Second, "warm-up job on "+nd.name, func() bool { return jobState(t, old.url(), id) == "succeeded" })
	}
	// A job that ends while the leader is away: its report must reach
	// the new leader.
	running := submit(t, old, "-constraint", "name="+others[0].name, "echo", `{"sleep": "1500ms"}`)
	eventually(t, 10*time.Second, "job running", func() bool { return jobState(t, old.url(), running) == "running" })

	old.signal(syscall.SIGSTOP)
	paused := time.Now()
	t.Cleanup(func() { old.signal(syscall.SIGCONT) })
	var leader *node
	eventually(t, 20*time.Second, "a new leader", func() bool {
		for _, nd := range others {
			if s, ok := agentSelf(nd); ok && s.State == "leader" {
				leader = nd
				return true
			}
		}
		return false
	})
	elected := time.Since(paused)
	t.Logf("%s paused; %s leads after %s", old.name, leader.name, elected.Round(time.Millisecond))

	// Bound: an election's worth of slack on a loaded machine, far below
	// the old 40 s call timeout.
	const bound = 8 * time.Second
	ids := []string{running}
	for _, nd := range others {
		ids = append(ids, submit(t, leader, "-constraint", "name="+nd.name, "echo", `{}`))
	}
	start := time.Now()
	for _, id := range ids {
		eventually(t, bound, "job "+id+" succeeded", func() bool { return jobState(t, leader.url(), id) == "succeeded" })
	}
	t.Logf("all jobs done %s after the new leader was known", time.Since(start).Round(time.Millisecond))
}
