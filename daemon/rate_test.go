package daemon_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/corral-dev/corral/daemon/api"
	"github.com/corral-dev/corral/daemon/config"
	"github.com/corral-dev/corral/daemon/testcluster"
	"github.com/corral-dev/corral/queue"
)

// TestRateLimitedQueueDrainsAtItsRate: a queue with rate = "5/s" and
// burst = 1 (from the agents' config) hands out its jobs one token at a
// time: the claim times the FSM recorded (the leader's entry times) are
// at least 200ms apart, every job runs, and the leader wakes by itself
// when a token comes (no other entry drives the drain).
func TestRateLimitedQueueDrainsAtItsRate(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Nodes: 3, Builtins: true, Configure: func(_ int, cfg *config.Config) {
		cfg.Queues["slow"] = config.Queue{MaxAttempts: 1, Retention: time.Hour, Rate: "5/s", Burst: 1}
	}})
	n := c.Leader()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c.Eventually(10*time.Second, "the leader replicated the queue's rate limit", func() bool {
		list, err := n.Client.Queues(ctx)
		if err != nil {
			return false
		}
		for _, q := range list.Queues {
			if q.Name == "slow" {
				return q.Rate == "5/s" && q.Burst == 1
			}
		}
		return false
	})
	const jobs = 8
	reqs := make([]api.JobRequest, jobs)
	for i := range reqs {
		reqs[i] = api.JobRequest{Queue: "slow", Plugin: "echo", Payload: []byte(`{}`)}
	}
	if _, err := n.Client.SubmitBatch(ctx, reqs); err != nil {
		t.Fatalf("submit: %v", err)
	}
	var done []*queue.Job
	c.Eventually(30*time.Second, "every job of the rate-limited queue succeeded", func() bool {
		done = n.Agent.Store().List(queue.Filter{Queue: "slow", State: queue.StateSucceeded})
		return len(done) == jobs
	})
	starts := make([]time.Time, 0, jobs)
	for _, j := range done {
		starts = append(starts, j.Attempts[0].Started)
	}
	slices.SortFunc(starts, func(a, b time.Time) int { return a.Compare(b) })
	for i := 1; i < len(starts); i++ {
		if gap := starts[i].Sub(starts[i-1]); gap < 200*time.Millisecond {
			t.Fatalf("claims %d and %d are %s apart in leader time, want >= 200ms at 5/s burst 1: %v", i-1, i, gap, starts)
		}
	}
	if span := starts[len(starts)-1].Sub(starts[0]); span > 10*time.Second {
		t.Fatalf("draining %d jobs at 5/s took %s: the leader does not wake when a token comes", jobs, span)
	}
}

// TestRateLimitedJobsWriteNoRaftEntries: jobs held back by an empty
// bucket cost no raft entries while they wait, and `waiting` says why.
func TestRateLimitedJobsWriteNoRaftEntries(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Nodes: 1, Builtins: true, Configure: func(_ int, cfg *config.Config) {
		cfg.Queues["hourly"] = config.Queue{MaxAttempts: 1, Retention: time.Hour}
		cfg.Limits.LeaseTTL = 1500 * time.Millisecond
	}})
	n := c.Leader()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The queue exists once the new leader replicated its queue block.
	var (
		q   *api.Queue
		err error
	)
	c.Eventually(10*time.Second, "the rate limit set through the API", func() bool {
		q, err = n.Client.SetQueueRate(ctx, "hourly", api.QueueRate{Rate: "1/h", Burst: 1})
		return err == nil
	})
	if q.Rate != "1/h" || q.Burst != 1 {
		t.Fatalf("set rate: %+v", q)
	}
	first, err := n.Client.Submit(ctx, api.JobRequest{Queue: "hourly", Plugin: "echo", Payload: []byte(`{}`)})
	if err != nil {
		t.Fatalf("submit: %v", err)
	}
	c.Eventually(20*time.Second, "the job that took the only token succeeded", func() bool {
		j, ok := n.Agent.Store().Get(first.ID)
		return ok && j.State == queue.StateSucceeded
	})
	held, err := n.Client.Submit(ctx, api.JobRequest{Queue: "hourly", Plugin: "echo", Payload: []byte(`{}`)})
	if err != nil {
		t.Fatalf("submit: %v", err)
	}
	start := n.Agent.Raft().LastIndex()
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if idx := n.Agent.Raft().LastIndex(); idx != start {
			t.Fatalf("raft index moved from %d to %d while only a rate-limited job waited", start, idx)
		}
		time.Sleep(50 * time.Millisecond)
	}
	j, err := n.Client.Job(ctx, held.ID)
	if err != nil {
		t.Fatal(err)
	}
	if j.State != "queued" || !strings.Contains(j.Waiting, `queue "hourly" is rate limited (1/h, burst 1): next token in`) {
		t.Fatalf("job %s waiting %q, want the rate limit named", j.State, j.Waiting)
	}
	list, err := n.Client.Queues(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range list.Queues {
		if q.Name == "hourly" && (q.Tokens == nil || *q.Tokens >= 1 || q.NextToken.IsZero()) {
			t.Fatalf("queue list shows %+v, want under one token and the next token's time", q)
		}
	}
	// Removing the limit lets the job go at once.
	if _, err := n.Client.SetQueueRate(ctx, "hourly", api.QueueRate{Rate: "0"}); err != nil {
		t.Fatal(err)
	}
	c.Eventually(20*time.Second, "the held job ran once the limit was removed", func() bool {
		j, ok := n.Agent.Store().Get(held.ID)
		return ok && j.State == queue.StateSucceeded
	})
}
