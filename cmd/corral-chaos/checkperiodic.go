package main

import (
	"cmp"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/corral-dev/corral/daemon/api"
	"github.com/corral-dev/corral/queue"
	"github.com/robfig/cron/v3"
)

const (
	// periodicStallLimit is how long a periodic job may go without firing a due
	// tick while one leader, followed by a majority, held throughout.
	periodicStallLimit = 5 * time.Second
	// sampleGap is the largest gap between two leader samples (and
	// between a window's edge and its nearest sample) for the samples to
	// say who led over a window.
	sampleGap = 1500 * time.Millisecond
	// maxTicks bounds the ticks the checker walks per periodic job.
	maxTicks = 100000
)

// checkPeriodic checks every periodic job of the workload against the
// rules of queue/periodic.go, from the final state (the jobs in the
// periodic job's queue, its last tick, creation time and counters), the
// observations of (last tick, last job) taken during the run, and the
// leader samples.
//
// A fired job does not record its tick, so the checker derives it. The
// FSM accepts a scheduled fire only for a tick of the schedule after the
// last one fired and not after the entry's time (the job's created_at),
// and with catch-up only the very next tick; with overlap allow every
// accepted fire makes one job. Hence:
//
//   - ticks strictly increase from job to job (in creation order), each a
//     tick of the schedule after the periodic job's creation and at or
//     before its job's creation. A tick observed with its job pins it; the
//     others get the latest tick that fits. Two jobs that need one tick
//     are a tick fired twice.
//   - catch-up: as many jobs as ticks up to the last one fired (so the k-th
//     job is the k-th tick): none is skipped.
//   - no catch-up: a tick missed while no leader could fire is skipped for
//     good (the next leader fires only the latest due tick; a later tick
//     fired first is never followed by an earlier one).
//
// Liveness: a window in which a due tick did not fire (a run of skipped
// ticks; a catch-up tick fired late; the stretch before parking) is a
// stall if one agreed leader held for periodicStallLimit inside it.
func checkPeriodic(r *report, in periodicInput, ref nodeFinal) {
	if len(in.Defs) == 0 {
		return
	}
	finals := map[string]api.Periodic{}
	for _, p := range ref.Periodics {
		finals[p.Name] = p
	}
	byQueue := map[string][]api.Job{}
	for _, j := range ref.Jobs {
		byQueue[j.Queue] = append(byQueue[j.Queue], j)
	}
	for _, d := range in.Defs {
		fin, ok := finals[d.Name]
		if !ok {
			r.PeriodicBadTicks++
			r.problem("periodic %s: %s has no such periodic job at the end", d.Name, ref.Name)
			continue
		}
		pc := periodicCheck{r: r, def: d, fin: fin, leaders: in.Leaders}
		if err := pc.run(byQueue[d.Name], in); err != nil {
			r.PeriodicBadTicks++
			r.problem("periodic %s: %v", d.Name, err)
		}
	}
}

// periodicCheck checks one periodic job.
type periodicCheck struct {
	r       *report
	def     periodicDef
	fin     api.Periodic
	leaders []leaderSample
	sched   cron.Schedule
	dups    map[int64]bool // ticks counted as fired twice
}

func (c *periodicCheck) run(jobs []api.Job, in periodicInput) error {
	sched, err := queue.ParseSchedule(c.def.Cron, "")
	if err != nil {
		return err
	}
	c.sched = sched
	r, name, created, lastTick := c.r, c.def.Name, c.fin.CreatedAt, c.fin.LastTick
	slices.SortFunc(jobs, func(a, b api.Job) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	// The ticks the FSM has dealt with: after the creation, up to the last
	// one fired.
	ticks := c.ticks(created, lastTick)
	r.PeriodicTicks += len(ticks)
	r.PeriodicFired += len(jobs)
	if len(jobs) > 0 && !c.onSchedule(lastTick, created) {
		r.PeriodicBadTicks++
		r.problem("periodic %s: last tick %s is not a tick of %q after its creation at %s", name, stamp(lastTick), c.def.Cron, stamp(created))
	}
	if c.fin.Fired != uint64(len(jobs)) || c.fin.Skipped != 0 {
		r.PeriodicBadTicks++
		r.problem("periodic %s: the FSM counts %d firings and %d skips, its queue holds %d jobs (overlap allow: one job per firing)", name, c.fin.Fired, c.fin.Skipped, len(jobs))
	}
	if n := len(jobs); (n == 0) != (c.fin.LastJob == "") || (n > 0 && jobs[n-1].ID != c.fin.LastJob) {
		r.PeriodicBadTicks++
		r.problem("periodic %s: its last job is %q, the newest job of its queue is not", name, c.fin.LastJob)
	}

	pins := c.pins(jobs, in.Obs)
	r.PeriodicPinned += len(pins)
	assigned := c.assign(jobs, ticks, pins)
	c.validate(jobs, assigned, created)
	if c.def.CatchUp {
		switch {
		case len(jobs) > len(ticks):
			// Ticks fired twice that were not told apart above.
			r.PeriodicDups += max(0, len(jobs)-len(ticks)-len(c.dups))
			r.problem("periodic %s (catch-up): %d jobs for %d ticks up to its last tick %s: a tick fired more than once", name, len(jobs), len(ticks), stamp(lastTick))
		case len(jobs) < len(ticks):
			r.PeriodicBadTicks += len(ticks) - len(jobs)
			r.problem("periodic %s (catch-up): %d jobs for %d ticks up to its last tick %s: a tick passed without its job", name, len(jobs), len(ticks), stamp(lastTick))
		}
	}
	c.liveness(jobs, assigned, created, lastTick, in.ParkedAt)
	return nil
}

// firedTwice counts tick t as fired twice, once however many ways it was
// found.
func (c *periodicCheck) firedTwice(t time.Time) {
	if c.dups == nil {
		c.dups = map[int64]bool{}
	}
	if !c.dups[t.UnixNano()] {
		c.dups[t.UnixNano()] = true
		c.r.PeriodicDups++
	}
}

// ticks lists the schedule's ticks in (from, to].
func (c *periodicCheck) ticks(from, to time.Time) []time.Time {
	var out []time.Time
	for t := c.sched.Next(from); !t.IsZero() && !t.After(to) && len(out) < maxTicks; t = c.sched.Next(t) {
		out = append(out, t)
	}
	return out
}

// onSchedule reports whether t is a tick of the schedule after created.
func (c *periodicCheck) onSchedule(t, created time.Time) bool {
	return t.After(created) && c.sched.Next(t.Add(-time.Nanosecond)).Equal(t)
}

// pins maps jobs to the ticks they were observed with (the final state's
// last tick and job included). A tick observed with two jobs is a tick
// fired twice; a job observed with two ticks, or an observed job that is
// gone, is counted too.
func (c *periodicCheck) pins(jobs []api.Job, obs []periodicObs) map[string]time.Time {
	r, name := c.r, c.def.Name
	known := map[string]bool{}
	for _, j := range jobs {
		known[j.ID] = true
	}
	all := []periodicObs{{Node: "final state", Name: name, LastTick: c.fin.LastTick, LastJob: c.fin.LastJob}}
	all = append(all, obs...)
	pins := map[string]time.Time{}
	byTick := map[int64]periodicObs{}
	for _, o := range all {
		if o.Name != name || o.LastJob == "" {
			continue
		}
		if !known[o.LastJob] {
			r.Lost++
			r.problem("lost: periodic %s fired job %s for tick %s (seen on %s) but the job is gone", name, o.LastJob, stamp(o.LastTick), o.Node)
			known[o.LastJob] = true
		}
		if t, ok := pins[o.LastJob]; ok && !t.Equal(o.LastTick) {
			r.PeriodicBadTicks++
			r.problem("periodic %s: job %s seen as the job of tick %s and of tick %s (%s)", name, o.LastJob, stamp(t), stamp(o.LastTick), o.Node)
			continue
		}
		if p, ok := byTick[o.LastTick.UnixNano()]; ok && p.LastJob != o.LastJob {
			if c.dups[o.LastTick.UnixNano()] {
				continue // told already
			}
			c.firedTwice(o.LastTick)
			r.problem("periodic %s: tick %s fired twice: job %s (seen on %s) and job %s (seen on %s)", name, stamp(o.LastTick), p.LastJob, p.Node, o.LastJob, o.Node)
			continue
		}
		pins[o.LastJob] = o.LastTick
		byTick[o.LastTick.UnixNano()] = o
	}
	return pins
}

// assign gives each job, newest first, its observed tick or else the
// latest tick that is not after its creation and before the next job's
// tick: if any assignment keeps the rules, this one does (with catch-up and
// as many jobs as ticks, it is the k-th tick to the k-th job). A zero time
// is a job no tick is left for.
func (c *periodicCheck) assign(jobs []api.Job, ticks []time.Time, pins map[string]time.Time) []time.Time {
	assigned := make([]time.Time, len(jobs))
	for k := len(jobs) - 1; k >= 0; k-- {
		if p, ok := pins[jobs[k].ID]; ok {
			assigned[k] = p
			continue
		}
		bound := jobs[k].CreatedAt
		if k+1 < len(jobs) {
			if next := assigned[k+1]; next.IsZero() {
				continue // no tick left for the next one: none for this one
			} else if !next.After(bound) {
				bound = next.Add(-time.Nanosecond)
			}
		}
		// The latest tick <= bound.
		i := sort.Search(len(ticks), func(i int) bool { return ticks[i].After(bound) })
		if i > 0 {
			assigned[k] = ticks[i-1]
		}
	}
	return assigned
}

// validate checks each job's tick: one of the schedule after the creation,
// not after the job was made, and later than the tick of the job before.
func (c *periodicCheck) validate(jobs []api.Job, assigned []time.Time, created time.Time) {
	r, name := c.r, c.def.Name
	for k, j := range jobs {
		t := assigned[k]
		switch {
		case t.IsZero():
			r.PeriodicDups++
			r.problem("periodic %s: job %s (created %s) has no tick of its own: more jobs than ticks up to then, a tick fired twice", name, j.ID, stamp(j.CreatedAt))
			continue
		case !c.onSchedule(t, created):
			r.PeriodicBadTicks++
			r.problem("periodic %s: job %s was fired for %s, not a tick of %q after its creation at %s", name, j.ID, stamp(t), c.def.Cron, stamp(created))
		case t.After(j.CreatedAt):
			r.PeriodicBadTicks++
			r.problem("periodic %s: job %s is the job of tick %s but was made before it, at %s", name, j.ID, stamp(t), stamp(j.CreatedAt))
		}
		if k == 0 || assigned[k-1].IsZero() {
			continue
		}
		switch prev := assigned[k-1]; {
		case t.Equal(prev):
			c.firedTwice(t)
			r.problem("periodic %s: tick %s fired twice: jobs %s and %s", name, stamp(t), jobs[k-1].ID, j.ID)
		case t.Before(prev):
			r.PeriodicBadTicks++
			r.problem("periodic %s: tick %s (job %s) fired after the later tick %s (job %s)", name, stamp(t), j.ID, stamp(prev), jobs[k-1].ID)
		}
	}
}

// liveness counts the stalls: windows in which a due tick did not fire
// while one agreed leader held for at least periodicStallLimit.
// It also counts the skipped ticks (no catch-up).
func (c *periodicCheck) liveness(jobs []api.Job, assigned []time.Time, created, lastTick, parkedAt time.Time) {
	r, name := c.r, c.def.Name
	type window struct {
		from, to time.Time
		what     string
	}
	var ws []window
	fired := map[int64]bool{}
	for _, t := range assigned {
		if !t.IsZero() {
			fired[t.UnixNano()] = true
		}
	}
	if c.def.CatchUp {
		for k, j := range jobs {
			if t := assigned[k]; !t.IsZero() && j.CreatedAt.Sub(t) >= periodicStallLimit {
				ws = append(ws, window{t, j.CreatedAt, fmt.Sprintf("tick %s fired only at %s (job %s)", stamp(t), stamp(j.CreatedAt), j.ID)})
			}
		}
	}
	// Runs of ticks that did not fire, up to when parking began (with
	// catch-up only the stretch after the last tick can have any).
	end := parkedAt
	if end.Before(lastTick) {
		end = lastTick
	}
	var runStart time.Time
	for _, t := range c.ticks(created, end.Add(time.Second)) {
		if fired[t.UnixNano()] || t.After(end) {
			to := t
			if t.After(end) {
				to = end
			}
			if !runStart.IsZero() && to.Sub(runStart) >= periodicStallLimit {
				ws = append(ws, window{runStart, to, fmt.Sprintf("no tick fired from %s to %s", stamp(runStart), stamp(to))})
			}
			runStart = time.Time{}
			continue
		}
		if !t.After(lastTick) {
			r.PeriodicSkipped++
			if steadyLeader(c.leaders, t, c.sched.Next(t)) != "" {
				r.PeriodicSkippedSteady++
			}
		}
		if runStart.IsZero() {
			runStart = t
		}
	}
	for _, w := range ws {
		if ld, from, to := longestSteady(c.leaders, w.from, w.to); to.Sub(from) >= periodicStallLimit {
			r.PeriodicStalls++
			r.problem("periodic %s stalled: %s, while %s led throughout %s-%s", name, w.what, ld, stamp(from), stamp(to))
		}
	}
}

// steadyLeader returns the leader every sample in [from, to] agrees on,
// if the samples cover the window densely; "" otherwise (no leader at some
// point, a change of leader, or too few samples to tell).
func steadyLeader(samples []leaderSample, from, to time.Time) string {
	leader, prev := "", from
	for _, s := range samples {
		if s.At.Before(from) || s.At.After(to) {
			continue
		}
		if s.Leader == "" || (leader != "" && s.Leader != leader) || s.At.Sub(prev) > sampleGap {
			return ""
		}
		leader, prev = s.Leader, s.At
	}
	if to.Sub(prev) > sampleGap {
		return ""
	}
	return leader
}

// longestSteady returns the longest stretch of samples in [from, to] that
// agree on one leader, without a gap between two of them longer than
// sampleGap (measured from its first sample to its last: conservative).
func longestSteady(samples []leaderSample, from, to time.Time) (leader string, start, end time.Time) {
	var cur string
	var cs, prev time.Time
	for _, s := range samples {
		if s.At.Before(from) || s.At.After(to) {
			continue
		}
		if s.Leader == "" || s.Leader != cur || s.At.Sub(prev) > sampleGap {
			cur, cs = s.Leader, s.At
		}
		prev = s.At
		if cur != "" && prev.Sub(cs) > end.Sub(start) {
			leader, start, end = cur, cs, prev
		}
	}
	return leader, start, end
}

func stamp(t time.Time) string { return t.UTC().Format("15:04:05.000") }
