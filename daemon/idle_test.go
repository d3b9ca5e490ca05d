package daemon_test

import (
	"context"
	"testing"
	"time"

	"github.com/corral-dev/corral/daemon/api"
	"github.com/corral-dev/corral/daemon/config"
	"github.com/corral-dev/corral/daemon/testcluster"
	"github.com/corral-dev/corral/queue"
)

// TestUnclaimableJobsWriteNoRaftEntries: 1,000 jobs that no node can run
// (a constraint no node's tags meet) and one job in a paused queue, on a
// node whose echo plugin has free slots, cost no raft entries: the index
// stays where it is while they wait. Before the claim dry run, the leader
// wrote empty claim entries in a loop (thousands per second).
func TestUnclaimableJobsWriteNoRaftEntries(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Nodes: 1, Builtins: true, Configure: func(_ int, cfg *config.Config) {
		cfg.Queues["held"] = config.Queue{}
		// Heartbeats every 500 ms: a worker that renewed an empty set of
		// leases would show within the observation window.
		cfg.Limits.LeaseTTL = 1500 * time.Millisecond
	}})
	n := c.Leader()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	jobs := make([]api.JobRequest, 1000)
	for i := range jobs {
		jobs[i] = api.JobRequest{Plugin: "echo", Payload: []byte(`{}`), Constraints: map[string]string{"gpu": "yes"}}
	}
	if _, err := n.Client.SubmitBatch(ctx, jobs); err != nil {
		t.Fatalf("submit: %v", err)
	}
	if err := n.Client.PauseQueue(ctx, "held"); err != nil {
		t.Fatalf("pause: %v", err)
	}
	if _, err := n.Client.Submit(ctx, api.JobRequest{Queue: "held", Plugin: "echo", Payload: []byte(`{}`)}); err != nil {
		t.Fatalf("submit: %v", err)
	}
	// A runnable job proves the node's echo plugin is ready and claiming.
	ok, err := n.Client.Submit(ctx, api.JobRequest{Plugin: "echo", Payload: []byte(`{}`)})
	if err != nil {
		t.Fatalf("submit: %v", err)
	}
	c.Eventually(20*time.Second, "the runnable job succeeds", func() bool {
		j, ok := n.Agent.Store().Get(ok.ID)
		return ok && j.State == queue.StateSucceeded
	})
	// Observe the index for a while: an idle cluster writes nothing.
	start := n.Agent.Raft().LastIndex()
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if idx := n.Agent.Raft().LastIndex(); idx != start {
			t.Fatalf("raft index moved from %d to %d while only unclaimable jobs waited", start, idx)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := len(n.Agent.Store().List(queue.Filter{State: queue.StateQueued})); got != 1001 {
		t.Fatalf("%d jobs queued, want 1001", got)
	}
}
