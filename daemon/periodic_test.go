package daemon_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/corral-dev/corral/daemon/api"
	"github.com/corral-dev/corral/daemon/config"
	"github.com/corral-dev/corral/daemon/testcluster"
)

// periodicSnapshot reads a periodic job and the jobs of its queue from one
// node at one raft index, so the two agree.
func periodicSnapshot(ctx context.Context, t *testing.T, c *testcluster.Cluster, n *testcluster.Node, name, queue string) (api.Periodic, []api.Job, bool) {
	t.Helper()
	list, err := n.Client.Periodics(ctx)
	if err != nil {
		return api.Periodic{}, nil, false
	}
	jobs, err := n.Client.Jobs(ctx, queue, "")
	if err != nil || jobs.Index != list.Index {
		return api.Periodic{}, nil, false
	}
	for _, p := range list.Periodics {
		if p.Name == name {
			return p, jobs.Jobs, true
		}
	}
	return api.Periodic{}, nil, false
}

// TestPeriodicFiresOncePerTickAcrossLeaderChange: a periodic job from the
// agents' config (every second, catch-up) keeps firing while its leader
// is stopped like a crash; afterwards the FSM holds exactly one job per
// whole second between its creation and its last tick: none skipped, none
// fired twice.
func TestPeriodicFiresOncePerTickAcrossLeaderChange(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Nodes: 3, Configure: func(_ int, cfg *config.Config) {
		cfg.Periodics = map[string]config.Periodic{
			"tick": {Cron: "* * * * * *", Plugin: "echo", Queue: "ticks", Overlap: "allow", CatchUp: true},
		}
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	fired := func(n *testcluster.Node) uint64 {
		list, err := n.Client.Periodics(ctx)
		if err != nil || len(list.Periodics) != 1 {
			return 0
		}
		return list.Periodics[0].Fired
	}
	old := c.Leader()
	c.Eventually(20*time.Second, "three ticks fired", func() bool { return fired(old) >= 3 })
	c.StopNode(old)
	var survivor *testcluster.Node
	for _, n := range c.Nodes {
		if n != old {
			survivor = n
			break
		}
	}
	before := fired(survivor)
	c.Eventually(30*time.Second, "three more ticks under the new leader", func() bool {
		return fired(survivor) >= before+3
	})
	var (
		p    api.Periodic
		jobs []api.Job
	)
	c.Eventually(20*time.Second, "a consistent read of the periodic job and its jobs", func() bool {
		var ok bool
		p, jobs, ok = periodicSnapshot(ctx, t, c, survivor, "tick", "ticks")
		return ok
	})
	if p.LastTick.Nanosecond() != 0 {
		t.Fatalf("last tick %s is not on a whole second", p.LastTick)
	}
	want := uint64(p.LastTick.Unix() - p.CreatedAt.Unix())
	if p.Fired != want || uint64(len(jobs)) != want || p.Skipped != 0 {
		t.Fatalf("created %s, last tick %s: fired %d, skipped %d, %d jobs; want %d of each",
			p.CreatedAt, p.LastTick, p.Fired, p.Skipped, len(jobs), want)
	}
	// The config's periodic job stays the only one: the new leader's sync
	// saw it unchanged and did not reset its last tick.
	if p.Job.Queue != "ticks" || p.Overlap != "allow" || !p.CatchUp {
		t.Fatalf("periodic after failover: %+v", p)
	}
}

// TestPeriodicAPI applies, lists, runs now and deletes a periodic job
// through the HTTP API of a follower.
func TestPeriodicAPI(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Nodes: 3})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	follower := c.Follower()
	_, err := follower.Client.ApplyPeriodic(ctx, "bad", api.PeriodicRequest{Cron: "every day", Job: api.JobRequest{Plugin: "echo"}})
	assertStatus(t, "a bad cron spec", err, http.StatusBadRequest)
	p, err := follower.Client.ApplyPeriodic(ctx, "daily", api.PeriodicRequest{Cron: "0 9 * * *", Timezone: "Europe/Berlin",
		Job: api.JobRequest{Plugin: "echo", Payload: []byte(`{"echo":"a & b > c"}`), Queue: "reports"}})
	if err != nil {
		t.Fatal(err)
	}
	if p.Next.IsZero() || p.Next.Before(time.Now()) || p.Overlap != "skip" || string(p.Job.Payload) != `{"echo":"a & b > c"}` {
		t.Fatalf("applied: %+v", p)
	}
	run, err := follower.Client.RunPeriodic(ctx, "daily")
	if err != nil {
		t.Fatal(err)
	}
	if j, err := follower.Client.Job(ctx, run.ID); err != nil || j.Queue != "reports" || j.Plugin != "echo" {
		t.Fatalf("run-now job %+v, %v", j, err)
	}
	if err := follower.Client.DeletePeriodic(ctx, "daily"); err != nil {
		t.Fatal(err)
	}
	// Through a follower as on the leader: 404, naming the job (the
	// error keeps its meaning across the node plane).
	notFound := func(what string, err error) {
		t.Helper()
		var se *api.StatusError
		if !errors.As(err, &se) || se.Code != http.StatusNotFound || !strings.Contains(se.Message, `periodic job not found: "daily"`) {
			t.Fatalf("%s: %v, want a 404 naming the missing periodic job", what, err)
		}
	}
	notFound("deleting twice", follower.Client.DeletePeriodic(ctx, "daily"))
	_, err = follower.Client.RunPeriodic(ctx, "daily")
	notFound("run-now of a deleted periodic job", err)
}
