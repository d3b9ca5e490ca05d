package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/corral-dev/corral/daemon/api"
)

// The synthetic periodic run: both periodic jobs created at 00:00:00.300,
// ticks every second up to 00:00:20, parked at 00:00:20.500. n2 leads
// throughout but for 00:00:07.500-00:00:09.800, when no node does: the
// no-catch-up job skips ticks 8 and 9, the catch-up job fires them late,
// at 00:00:10.
var (
	pT0      = time.Date(2026, 1, 1, 0, 0, 0, 300_000_000, time.UTC)
	pNoLeadA = pT0.Add(7200 * time.Millisecond)
	pNoLeadB = pT0.Add(9500 * time.Millisecond)
)

func tickAt(sec int) time.Time { return time.Date(2026, 1, 1, 0, 0, sec, 0, time.UTC) }

// periodicJob is a succeeded job of periodic name fired at created, with
// the side effect its result names.
func periodicJob(name string, n int, created time.Time) (api.Job, effect) {
	id := fmt.Sprintf("P-%s-%02d", name, n)
	nonce := fmt.Sprintf("nonce-%s-%02d", name, n)
	j := api.Job{ID: id, Queue: name, Plugin: "chaos", State: "succeeded", Attempt: 1, Node: "n1",
		Result:    json.RawMessage(`{"nonce":"` + nonce + `"}`),
		Attempts:  []api.Attempt{{Attempt: 1, Node: "n1", Token: uint64(1000 + n), Outcome: "succeeded"}},
		CreatedAt: created, UpdatedAt: created.Add(100 * time.Millisecond)}
	return j, effect{Job: id, Attempt: 1, Node: "n1", Nonce: nonce, Outcome: "succeeded"}
}

// withPeriodic adds the periodic part to the synthetic history.
func withPeriodic(in checkInput) checkInput {
	var jobs []api.Job
	var finals []api.Periodic
	for _, d := range periodicDefs {
		var mine []api.Job
		for sec := 1; sec <= 20; sec++ {
			created := tickAt(sec).Add(40 * time.Millisecond)
			if sec == 8 || sec == 9 {
				if !d.CatchUp {
					continue
				}
				created = tickAt(10).Add(time.Duration(sec) * time.Millisecond)
			}
			j, e := periodicJob(d.Name, sec, created)
			mine = append(mine, j)
			in.Effects = append(in.Effects, e)
		}
		jobs = append(jobs, mine...)
		finals = append(finals, api.Periodic{Name: d.Name, Cron: parkCron, Overlap: "allow", CatchUp: d.CatchUp,
			LastTick: tickAt(20), LastJob: mine[len(mine)-1].ID, Fired: uint64(len(mine)), CreatedAt: pT0})
	}
	for i := range in.Nodes {
		in.Nodes[i].Jobs = append(slices.Clone(in.Nodes[i].Jobs), jobs...)
		in.Nodes[i].Periodics = finals
	}
	var leaders []leaderSample
	for at := pT0; at.Before(tickAt(22)); at = at.Add(300 * time.Millisecond) {
		s := leaderSample{At: at, Leader: "n2"}
		if at.After(pNoLeadA) && at.Before(pNoLeadB) {
			s.Leader = ""
		}
		leaders = append(leaders, s)
	}
	in.Periodic = periodicInput{Defs: periodicDefs, ParkedAt: tickAt(20).Add(500 * time.Millisecond), Leaders: leaders,
		Obs: []periodicObs{
			{At: tickAt(3).Add(200 * time.Millisecond), Node: "n1", Name: "tick-catchup", LastTick: tickAt(3), LastJob: "P-tick-catchup-03"},
			{At: tickAt(5).Add(200 * time.Millisecond), Node: "n2", Name: "tick-latest", LastTick: tickAt(5), LastJob: "P-tick-latest-05"},
			{At: tickAt(12).Add(200 * time.Millisecond), Node: "n3", Name: "tick-latest", LastTick: tickAt(12), LastJob: "P-tick-latest-12"},
		}}
	return in
}

// editJobs applies f to every node's copy of the jobs.
func editJobs(in *checkInput, f func([]api.Job) []api.Job) {
	for i := range in.Nodes {
		in.Nodes[i].Jobs = f(slices.Clone(in.Nodes[i].Jobs))
	}
}

// editFinal applies f to every node's copy of periodic job name.
func editFinal(in *checkInput, name string, f func(p *api.Periodic)) {
	for i := range in.Nodes {
		ps := slices.Clone(in.Nodes[i].Periodics)
		for k := range ps {
			if ps[k].Name == name {
				f(&ps[k])
			}
		}
		in.Nodes[i].Periodics = ps
	}
}

// addJob adds job j of its queue's periodic job (its side effect too) and
// counts it in that periodic job's firings.
func addJob(in *checkInput, j api.Job, e effect) {
	editJobs(in, func(js []api.Job) []api.Job { return append(js, j) })
	in.Effects = append(in.Effects, e)
	editFinal(in, j.Queue, func(p *api.Periodic) { p.Fired++ })
}

// dropJobs removes the jobs of periodic name fired for the ticks of
// seconds from..to.
func dropJobs(in *checkInput, name string, from, to int) {
	n := 0
	editJobs(in, func(js []api.Job) []api.Job {
		n = 0
		return slices.DeleteFunc(js, func(j api.Job) bool {
			for sec := from; sec <= to; sec++ {
				if j.ID == fmt.Sprintf("P-%s-%02d", name, sec) {
					n++
					return true
				}
			}
			return false
		})
	})
	editFinal(in, name, func(p *api.Periodic) { p.Fired -= uint64(n) })
}

func TestPeriodicCheckPassesAGoodRun(t *testing.T) {
	in := withPeriodic(synthetic())
	r := check(in)
	if !r.ok() {
		t.Fatalf("a correct periodic history failed: %+v\n%s", r, strings.Join(r.Problems, "\n"))
	}
	// 20 ticks each; the no-catch-up job skipped 8 and 9 while no node led.
	if r.PeriodicTicks != 40 || r.PeriodicFired != 38 || r.PeriodicSkipped != 2 || r.PeriodicSkippedSteady != 0 {
		t.Fatalf("counts: ticks %d fired %d skipped %d (steady %d); want 40, 38, 2, 0",
			r.PeriodicTicks, r.PeriodicFired, r.PeriodicSkipped, r.PeriodicSkippedSteady)
	}
	line := resultLine(r, in.Faults, []string{faultKill}, 1, "netns")
	for _, want := range []string{" periodic_ticks=40 ", " periodic_fired=38 ", " periodic_dups=0 ", " periodic_stalls=0"} {
		if !strings.Contains(line, want) {
			t.Errorf("%q lacks %q", line, want)
		}
	}
}

// TestPeriodicCheckCatchesViolations: each history breaks one rule of
// periodic jobs; the checker must fail every one, on the right count.
func TestPeriodicCheckCatchesViolations(t *testing.T) {
	cases := []violation{
		{"catch-up tick fired twice", func(in *checkInput) {
			j, e := periodicJob("tick-catchup", 99, tickAt(12).Add(300*time.Millisecond))
			addJob(in, j, e)
		}, func(r report) int { return r.PeriodicDups }, "tick-catchup (catch-up): 21 jobs for 20 ticks"},
		{"tick fired twice, seen by the observer", func(in *checkInput) {
			j, e := periodicJob("tick-latest", 99, tickAt(12).Add(300*time.Millisecond))
			addJob(in, j, e)
		}, func(r report) int { return r.PeriodicDups }, "tick 00:00:12.000 fired twice"},
		{"tick fired twice, nothing observed", func(in *checkInput) {
			in.Periodic.Obs = nil
			j, e := periodicJob("tick-latest", 99, tickAt(3).Add(300*time.Millisecond))
			addJob(in, j, e)
		}, func(r report) int { return r.PeriodicDups }, "has no tick of its own"},
		{"two jobs observed for one tick", func(in *checkInput) {
			in.Periodic.Obs = append(in.Periodic.Obs, periodicObs{At: tickAt(13), Node: "n1", Name: "tick-latest", LastTick: tickAt(12), LastJob: "P-tick-latest-13"})
		}, func(r report) int { return r.PeriodicDups }, "tick 00:00:12.000 fired twice: job P-tick-latest-12"},
		{"tick not on the schedule", func(in *checkInput) {
			in.Periodic.Obs[1].LastTick = tickAt(5).Add(-500 * time.Millisecond)
		}, func(r report) int { return r.PeriodicBadTicks }, "was fired for 00:00:04.500, not a tick"},
		{"last tick not on the schedule", func(in *checkInput) {
			editFinal(in, "tick-latest", func(p *api.Periodic) { p.LastTick = tickAt(20).Add(250 * time.Millisecond) })
		}, func(r report) int { return r.PeriodicBadTicks }, "last tick 00:00:20.250 is not a tick"},
		{"tick fired before its time", func(in *checkInput) {
			in.Periodic.Obs[1].LastTick = tickAt(6)
		}, func(r report) int { return r.PeriodicBadTicks }, "but was made before it"},
		{"catch-up tick passed without its job", func(in *checkInput) {
			dropJobs(in, "tick-catchup", 4, 4)
		}, func(r report) int { return r.PeriodicBadTicks }, "19 jobs for 20 ticks"},
		{"long gap with a leader present", func(in *checkInput) {
			dropJobs(in, "tick-latest", 13, 19)
		}, func(r report) int { return r.PeriodicStalls }, "periodic tick-latest stalled: no tick fired from 00:00:13.000 to 00:00:20.000, while n2 led"},
		{"long gap across an outage, then a steady leader", func(in *checkInput) {
			in.Periodic.Obs = in.Periodic.Obs[:1]
			dropJobs(in, "tick-latest", 4, 19)
		}, func(r report) int { return r.PeriodicStalls }, "no tick fired from 00:00:04.000 to 00:00:20.000, while n2 led throughout 00:00:09.900"},
		{"catch-up fired late with a leader present", func(in *checkInput) {
			editJobs(in, func(js []api.Job) []api.Job {
				// Ticks 13-18 fired one after the other at 00:00:19.
				for i := range js {
					for sec := 13; sec <= 18; sec++ {
						if js[i].ID == fmt.Sprintf("P-tick-catchup-%02d", sec) {
							js[i].CreatedAt = tickAt(19).Add(time.Duration(sec) * time.Millisecond)
						}
					}
				}
				return js
			})
		}, func(r report) int { return r.PeriodicStalls }, "tick 00:00:13.000 fired only at 00:00:19"},
		{"no firing before parking with a leader present", func(in *checkInput) {
			in.Periodic.ParkedAt = tickAt(27)
			for at := tickAt(22); at.Before(tickAt(28)); at = at.Add(300 * time.Millisecond) {
				in.Periodic.Leaders = append(in.Periodic.Leaders, leaderSample{At: at, Leader: "n2"})
			}
		}, func(r report) int { return r.PeriodicStalls }, "no tick fired from 00:00:21.000 to"},
		{"fired job gone", func(in *checkInput) {
			in.Periodic.Obs = append(in.Periodic.Obs, periodicObs{At: tickAt(15), Node: "n1", Name: "tick-latest", LastTick: tickAt(15), LastJob: "P-gone"})
		}, func(r report) int { return r.Lost }, "lost: periodic tick-latest fired job P-gone"},
		{"counters disagree with the jobs", func(in *checkInput) {
			editFinal(in, "tick-catchup", func(p *api.Periodic) { p.Fired++ })
		}, func(r report) int { return r.PeriodicBadTicks }, "the FSM counts 21 firings"},
		{"periodic job missing", func(in *checkInput) {
			for i := range in.Nodes {
				in.Nodes[i].Periodics = in.Nodes[i].Periodics[:1]
			}
		}, func(r report) int { return r.PeriodicBadTicks }, "periodic tick-latest: n2 has no such periodic job"},
		{"periodic state diverges", func(in *checkInput) {
			in.Nodes[0].Periodics = slices.Clone(in.Nodes[0].Periodics)
			in.Nodes[0].Periodics[0].Fired = 3
		}, func(r report) int { return r.Diverged }, "diverged: periodic jobs on n1"},
	}
	runViolations(t, func() checkInput { return withPeriodic(synthetic()) }, cases)
}

// TestPeriodicGapWithoutLeaderPasses: the long gap that fails with a
// leader present passes when no node led, or when the samples are too few
// to say (a gap in them).
func TestPeriodicGapWithoutLeaderPasses(t *testing.T) {
	for _, tc := range []struct {
		name   string
		sample func(s *leaderSample)
	}{
		{"no leader", func(s *leaderSample) { s.Leader = "" }},
		{"leader changed", func(s *leaderSample) {
			if s.At.After(tickAt(16)) {
				s.Leader = "n3"
			}
		}},
		{"unknown", func(s *leaderSample) { s.At = time.Time{} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := withPeriodic(synthetic())
			dropJobs(&in, "tick-latest", 13, 19)
			for i, s := range in.Periodic.Leaders {
				if s.At.After(tickAt(12)) && s.At.Before(tickAt(19)) {
					tc.sample(&in.Periodic.Leaders[i])
				}
			}
			in.Periodic.Leaders = slices.DeleteFunc(in.Periodic.Leaders, func(s leaderSample) bool { return s.At.IsZero() })
			if r := check(in); !r.ok() || r.PeriodicSkipped != 9 {
				t.Fatalf("gap without a steady leader: ok=%t skipped=%d (want 9)\n%s", r.ok(), r.PeriodicSkipped, strings.Join(r.Problems, "\n"))
			}
		})
	}
}

// TestPeriodicDupCountedOnce: a tick fired twice, seen from two nodes and
// found again by the tick assignment, is one tick fired twice.
func TestPeriodicDupCountedOnce(t *testing.T) {
	in := withPeriodic(synthetic())
	j, e := periodicJob("tick-latest", 99, tickAt(12).Add(300*time.Millisecond))
	addJob(&in, j, e)
	for _, node := range []string{"n1", "n2"} {
		in.Periodic.Obs = append(in.Periodic.Obs, periodicObs{At: tickAt(12).Add(400 * time.Millisecond), Node: node, Name: "tick-latest", LastTick: tickAt(12), LastJob: j.ID})
	}
	if r := check(in); r.PeriodicDups != 1 {
		t.Fatalf("periodic_dups=%d, want 1:\n%s", r.PeriodicDups, strings.Join(r.Problems, "\n"))
	}
}
