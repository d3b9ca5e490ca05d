package main_test

import (
	"strings"
	"testing"
	"time"
)

// periodicView is the part of `corral periodic list -json` the tests use.
type periodicView struct {
	Periodics []struct {
		Name      string    `json:"name"`
		Fired     uint64    `json:"fired"`
		Skipped   uint64    `json:"skipped"`
		LastTick  time.Time `json:"last_tick"`
		CreatedAt time.Time `json:"created_at"`
		Next      time.Time `json:"next"`
	} `json:"periodics"`
	Index uint64 `json:"index"`
}

// TestPeriodicEverySecondSurvivesLeaderKill: a periodic job with a
// one-second schedule and catch-up, applied through the CLI, fires on
// schedule; the leader is killed with SIGKILL between two ticks; the new
// leader carries on. Afterwards there is exactly one job per whole second
// from the periodic job's creation to its last tick: none skipped, none
// duplicated.
func TestPeriodicEverySecondSurvivesLeaderKill(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, clusterOpts{bootstrapExpect: 3, cleanupAfter: time.Minute})
	v := c.waitPeers(30*time.Second, "3 voters and a leader", func(v peersView) bool {
		return v.votersAre("n1", "n2", "n3")
	})
	ld := c.byName(v.leader)
	// A plugin no node has keeps the jobs queued: the test counts jobs,
	// not runs.
	stdout, stderr, code := cli(t, ld.url(), "periodic", "apply", "-cron", "* * * * * *", "-overlap", "allow", "-catch-up",
		"-queue", "ticks", "tick", "nobody-has-this-plugin", `{"n":1}`)
	if code != 0 || !strings.Contains(stdout, "periodic job tick applied; next run") {
		t.Fatalf("periodic apply: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	fired := func(nd *node) uint64 {
		var pv periodicView
		if !cliJSON(t, nd, &pv, "periodic", "list", "-json") || len(pv.Periodics) != 1 {
			return 0
		}
		return pv.Periodics[0].Fired
	}
	var last uint64
	eventually(t, 20*time.Second, "two ticks fired", func() bool { last = fired(ld); return last >= 2 })
	// Kill right after a tick committed, so the kill lands between ticks.
	eventually(t, 5*time.Second, "the next tick", func() bool { return fired(ld) > last })
	ld.kill()
	v = c.waitPeers(20*time.Second, "a new leader", func(v peersView) bool { return v.leader != ld.name })
	nl := c.byName(v.leader)
	before := fired(nl)
	eventually(t, 30*time.Second, "three ticks under the new leader", func() bool { return fired(nl) >= before+3 })

	// Read the periodic job and its jobs at one raft index.
	var (
		pv   periodicView
		jobs struct {
			Jobs  []jobInfo `json:"jobs"`
			Index uint64    `json:"index"`
		}
	)
	eventually(t, 20*time.Second, "a consistent read", func() bool {
		return cliJSON(t, nl, &pv, "periodic", "list", "-json") &&
			cliJSON(t, nl, &jobs, "job", "list", "-json", "-queue", "ticks") &&
			pv.Index == jobs.Index && len(pv.Periodics) == 1
	})
	p := pv.Periodics[0]
	want := uint64(p.LastTick.Unix() - p.CreatedAt.Unix())
	if p.LastTick.Nanosecond() != 0 || p.Fired != want || uint64(len(jobs.Jobs)) != want || p.Skipped != 0 {
		t.Fatalf("created %s, last tick %s: fired %d, skipped %d, %d jobs; want %d of each (one per second)",
			p.CreatedAt, p.LastTick, p.Fired, p.Skipped, len(jobs.Jobs), want)
	}
	if !p.Next.After(p.LastTick) {
		t.Fatalf("next run %s is not after the last tick %s", p.Next, p.LastTick)
	}
	// run-now makes one job outside the schedule; delete stops the ticks.
	if stdout, _, code := cli(t, nl.url(), "periodic", "run-now", "tick"); code != 0 || strings.TrimSpace(stdout) == "" {
		t.Fatalf("run-now: exit %d, %q", code, stdout)
	}
	if _, stderr, code := cli(t, nl.url(), "periodic", "delete", "tick"); code != 0 {
		t.Fatalf("delete: exit %d, %q", code, stderr)
	}
	if _, stderr, code := cli(t, nl.url(), "periodic", "run-now", "tick"); code != 1 || !strings.Contains(stderr, "periodic job not found") {
		t.Fatalf("run-now after delete: exit %d, %q", code, stderr)
	}
}
