package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/corral-dev/corral/daemon/api"
)

// checkInput is everything the checker looks at: the client history, the
// faults, the plugin's side-effect lines and every node's final state.
type checkInput struct {
	Ops     []Op
	Faults  []faultRecord
	Effects []effect
	Nodes   []nodeFinal
	// Periodic is the periodic part of the workload (none in some tests).
	Periodic periodicInput
}

// report counts the violations of each property; Problems explains them.
type report struct {
	Acked          int
	Lost           int // acknowledged submits whose job is gone
	DupKeys        int // unique keys with more than one job
	WrongState     int // final states that contradict an acknowledged cancel
	Diverged       int // jobs not identical on every node, plus nodes not at the same index
	Stuck          int // jobs not terminal after the drain
	StaleResults   int // succeeded jobs whose result is not the valid lease's execution
	StaleReads     int // consistent reads that went back in time
	MinorityAcks   int // writes acknowledged by a node cut off from the quorum
	Leaders        int // leaders after healing (must be 1)
	VotersMismatch int // nodes whose voter set is not every node
	// Periodic jobs (see checkPeriodic): ticks of their schedules up to
	// the last one fired, jobs fired, ticks skipped (no catch-up: only
	// while no leader could fire), ticks fired twice, jobs whose tick
	// breaks the schedule, and stalls (no firing for periodicStallLimit
	// while one leader held).
	PeriodicTicks   int
	PeriodicFired   int
	PeriodicSkipped int
	// PeriodicSkippedSteady counts the skipped ticks whose second had one
	// leader throughout (a slow commit): reported, not a failure.
	PeriodicSkippedSteady int
	// PeriodicPinned counts the fired jobs seen with their tick.
	PeriodicPinned   int
	PeriodicDups     int
	PeriodicBadTicks int
	PeriodicStalls   int
	Problems         []string
}

func (r *report) problem(format string, args ...any) {
	const maxProblems = 200
	if len(r.Problems) < maxProblems {
		r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
	}
}

// ok is the verdict.
func (r *report) ok() bool {
	return r.Lost == 0 && r.DupKeys == 0 && r.WrongState == 0 && r.Diverged == 0 && r.Stuck == 0 &&
		r.StaleResults == 0 && r.StaleReads == 0 && r.MinorityAcks == 0 && r.Leaders == 1 && r.VotersMismatch == 0 &&
		r.PeriodicDups == 0 && r.PeriodicBadTicks == 0 && r.PeriodicStalls == 0
}

// check runs every check of the harness on in.
func check(in checkInput) report {
	var r report
	ref := reference(in.Nodes)
	byID := map[string]api.Job{}
	for _, j := range ref.Jobs {
		byID[j.ID] = j
	}
	done := completions(in.Ops)
	checkSubmits(&r, in.Ops, done, ref, byID)
	checkCancels(&r, in.Ops, done, byID)
	checkReads(&r, in.Ops, done)
	checkMinority(&r, in.Ops, done, in.Faults)
	checkResults(&r, ref.Jobs, in.Effects)
	checkConvergence(&r, in.Nodes, ref)
	checkCluster(&r, in.Nodes)
	checkPeriodic(&r, in.Periodic, ref)
	for _, j := range ref.Jobs {
		if !terminal(j.State) {
			r.Stuck++
			r.problem("stuck: job %s (%s) is %s after the drain (attempt %d)", j.ID, j.UniqueKey, j.State, j.Attempt)
		}
	}
	return r
}

// reference is the node whose final state the others are compared with:
// the leader, else the reachable node with the highest index.
func reference(nodes []nodeFinal) nodeFinal {
	var best nodeFinal
	for _, n := range nodes {
		if !n.Reachable {
			continue
		}
		if n.Self.State == "leader" {
			return n
		}
		if n.Index >= best.Index {
			best = n
		}
	}
	return best
}

// completions maps an operation ID to its completion.
func completions(ops []Op) map[int64]Op {
	out := map[int64]Op{}
	for _, o := range ops {
		if o.Type != opInvoke {
			out[o.ID] = o
		}
	}
	return out
}

// checkSubmits: every acknowledged submit's job exists (lost), a key's
// acknowledgements all name one job, and a key has one job at the end
// (dup_keys).
func checkSubmits(r *report, ops []Op, done map[int64]Op, ref nodeFinal, byID map[string]api.Job) {
	ackedIDs := map[string]map[string]bool{} // key -> job IDs acknowledged
	for _, o := range ops {
		if o.Type != opInvoke || o.F != "submit" {
			continue
		}
		d, ok := done[o.ID]
		if !ok || d.Type != opOK {
			continue
		}
		if ackedIDs[o.Key] == nil {
			ackedIDs[o.Key] = map[string]bool{}
		}
		ackedIDs[o.Key][d.Job] = true
	}
	r.Acked = len(ackedIDs)
	dup := map[string]bool{}
	for _, key := range slices.Sorted(maps.Keys(ackedIDs)) {
		ids := ackedIDs[key]
		if len(ids) > 1 {
			dup[key] = true
			r.problem("dup_keys: key %s acknowledged as %d jobs: %v", key, len(ids), slices.Sorted(maps.Keys(ids)))
		}
		for _, id := range slices.Sorted(maps.Keys(ids)) {
			if _, ok := byID[id]; !ok {
				r.Lost++
				r.problem("lost: job %s (key %s) was acknowledged but %s does not have it", id, key, ref.Name)
			}
		}
	}
	perKey := map[string][]string{}
	for _, j := range ref.Jobs {
		if j.UniqueKey != "" {
			perKey[j.UniqueKey] = append(perKey[j.UniqueKey], j.ID)
		}
	}
	for _, key := range slices.Sorted(maps.Keys(perKey)) {
		if ids := perKey[key]; len(ids) > 1 && !dup[key] {
			dup[key] = true
			r.problem("dup_keys: key %s has %d jobs on %s: %v", key, len(ids), ref.Name, ids)
		}
	}
	r.DupKeys = len(dup)
}

// checkCancels: a cancel acknowledged with the job cancelled must leave it
// cancelled; one acknowledged while the job ran must leave it cancelled or
// succeeded; unless a retry of it was acknowledged later.
func checkCancels(r *report, ops []Op, done map[int64]Op, byID map[string]api.Job) {
	lastRetry := map[string]int64{} // job -> completion time of the last ok retry
	for _, o := range ops {
		if d, ok := done[o.ID]; o.Type == opInvoke && o.F == "retry" && ok && d.Type == opOK {
			lastRetry[o.Job] = max(lastRetry[o.Job], d.T)
		}
	}
	for _, o := range ops {
		d, ok := done[o.ID]
		if o.Type != opInvoke || o.F != "cancel" || !ok || d.Type != opOK {
			continue
		}
		j, ok := byID[o.Job]
		if !ok || lastRetry[o.Job] > o.T {
			continue
		}
		switch {
		case d.State == "cancelled" && j.State != "cancelled":
			r.WrongState++
			r.problem("wrong_state: job %s was acknowledged cancelled (op %d) but ended %s", o.Job, o.ID, j.State)
		case d.State == "running" && j.State != "cancelled" && j.State != "succeeded":
			// A running job asked to cancel ends cancelled, or succeeded
			// if its attempt finished first; it never runs again.
			r.WrongState++
			r.problem("wrong_state: job %s was running when its cancel was acknowledged (op %d) but ended %s", o.Job, o.ID, j.State)
		}
	}
}

// checkReads: consistent reads of a job never go back in time. A read
// that completed before another began must not see a newer job index.
func checkReads(r *report, ops []Op, done map[int64]Op) {
	type read struct {
		invoke, complete int64
		index            uint64
		id               int64
	}
	perJob := map[string][]read{}
	for _, o := range ops {
		d, ok := done[o.ID]
		if o.Type != opInvoke || o.F != "read" || o.Mode != "consistent" || !ok || d.Type != opOK {
			continue
		}
		perJob[o.Job] = append(perJob[o.Job], read{o.T, d.T, d.Index, o.ID})
	}
	for _, job := range slices.Sorted(maps.Keys(perJob)) {
		reads := perJob[job]
		for _, a := range reads {
			for _, b := range reads {
				if a.complete < b.invoke && b.index < a.index {
					r.StaleReads++
					r.problem("stale read: job %s read at index %d (op %d) after a read had seen index %d (op %d)", job, b.index, b.id, a.index, a.id)
				}
			}
		}
	}
}

// checkMinority: a node cut off from the quorum must acknowledge no write
// invoked and answered while the cut held.
func checkMinority(r *report, ops []Op, done map[int64]Op, faults []faultRecord) {
	for _, o := range ops {
		d, ok := done[o.ID]
		if o.Type != opInvoke || o.F == "read" || !ok || d.Type != opOK {
			continue
		}
		for _, f := range faults {
			if f.Err == "" && slices.Contains(f.Minority, o.Node) && o.T > f.Applied && d.T < f.HealStart {
				r.MinorityAcks++
				r.problem("minority ack: %s of %s%s acknowledged by %s while %s cut it off (op %d)", o.F, o.Job, o.Key, o.Node, f.Kind, o.ID)
			}
		}
	}
}

// checkResults: a succeeded job's result is the one its valid lease
// produced: the nonce in the result names a side-effect line of the same
// job, of the final attempt, run on the node holding that attempt's lease,
// and the attempt history has that attempt, under its fencing token, on
// that node and succeeded. The plugin is not given the token: an attempt
// number names exactly one lease (every claim increments it), and the
// history maps it to its token.
func checkResults(r *report, jobs []api.Job, effects []effect) {
	byNonce := map[string]effect{}
	for _, e := range effects {
		byNonce[e.Nonce] = e
	}
	for _, j := range jobs {
		if j.State != "succeeded" {
			continue
		}
		var res struct {
			Nonce string `json:"nonce"`
		}
		_ = json.Unmarshal(j.Result, &res)
		e, found := byNonce[res.Nonce]
		var last api.Attempt
		for _, at := range j.Attempts {
			if at.Attempt == j.Attempt {
				last = at
			}
		}
		switch {
		case !found:
			r.StaleResults++
			r.problem("stale result: job %s result %s matches no execution in the side-effect logs", j.ID, j.Result)
		case e.Job != j.ID || e.Attempt != j.Attempt || e.Node != j.Node || e.Outcome != "succeeded":
			r.StaleResults++
			r.problem("stale result: job %s (attempt %d on %s) recorded the result of %s attempt %d on %s (%s)",
				j.ID, j.Attempt, j.Node, e.Job, e.Attempt, e.Node, e.Outcome)
		case last.Node != j.Node || last.Token == 0 || last.Outcome != "succeeded":
			r.StaleResults++
			r.problem("stale result: job %s attempt %d: its history %+v is not a succeeded lease of %s", j.ID, j.Attempt, last, j.Node)
		}
	}
}

// checkConvergence: every node holds the same jobs, identical field by
// field (node-local annotations aside), at the same index.
func checkConvergence(r *report, nodes []nodeFinal, ref nodeFinal) {
	refJobs := canonicalJobs(ref.Jobs)
	diverged := map[string]bool{}
	for _, n := range nodes {
		if n.Name == ref.Name {
			continue
		}
		if !n.Reachable {
			r.problem("diverged: %s did not answer after healing", n.Name)
			for id := range refJobs {
				diverged[id] = true
			}
			continue
		}
		if n.Index != ref.Index {
			diverged["index of "+n.Name] = true
			r.problem("diverged: %s is at index %d, %s at %d", n.Name, n.Index, ref.Name, ref.Index)
		}
		mine := canonicalJobs(n.Jobs)
		for id, c := range refJobs {
			if mine[id] != c {
				diverged[id] = true
				r.problem("diverged: job %s on %s: %s; on %s: %s", id, n.Name, orNone(mine[id]), ref.Name, c)
			}
		}
		for id, c := range mine {
			if _, ok := refJobs[id]; !ok {
				diverged[id] = true
				r.problem("diverged: job %s only on %s: %s", id, n.Name, c)
			}
		}
		if mine, theirs := canonicalPeriodics(n.Periodics), canonicalPeriodics(ref.Periodics); mine != theirs {
			diverged["periodics on "+n.Name] = true
			r.problem("diverged: periodic jobs on %s: %s; on %s: %s", n.Name, mine, ref.Name, theirs)
		}
	}
	r.Diverged = len(diverged)
}

// checkCluster: one leader every node agrees on; every node's raft
// configuration has all the nodes as voters.
func checkCluster(r *report, nodes []nodeFinal) {
	leaders := map[string]bool{}
	all := map[string]bool{}
	for _, n := range nodes {
		all[n.Name] = true
	}
	for _, n := range nodes {
		if !n.Reachable {
			r.VotersMismatch++
			continue
		}
		if n.Self.State == "leader" {
			leaders[n.Self.ID] = true
		}
		if n.Self.Leader != "" {
			leaders[n.Self.Leader] = true
		}
		var vs []string
		for _, s := range n.Config.Servers {
			if s.Voter {
				vs = append(vs, s.Node)
			}
		}
		sort.Strings(vs)
		if len(vs) != len(all) || !allIn(vs, all) {
			r.VotersMismatch++
			r.problem("voters: %s sees voters %v", n.Name, vs)
		}
	}
	r.Leaders = len(leaders)
	if r.Leaders != 1 {
		r.problem("leaders: %d distinct leaders after healing: %v", r.Leaders, slices.Sorted(maps.Keys(leaders)))
	}
}

// canonicalJobs renders each job without the fields a node adds from its
// own runtime state (progress, waiting), for comparison.
func canonicalJobs(jobs []api.Job) map[string]string {
	out := make(map[string]string, len(jobs))
	for _, j := range jobs {
		j.Progress, j.Waiting = nil, ""
		b, _ := json.Marshal(j)
		out[j.ID] = string(b)
	}
	return out
}

// canonicalPeriodics renders the replicated part of the periodic jobs
// (next depends on the reader's clock).
func canonicalPeriodics(ps []api.Periodic) string {
	var b strings.Builder
	for _, p := range ps {
		p.Next = time.Time{}
		j, _ := json.Marshal(p)
		b.Write(j)
	}
	return b.String()
}

func allIn(names []string, set map[string]bool) bool {
	for _, n := range names {
		if !set[n] {
			return false
		}
	}
	return true
}

func orNone(s string) string {
	if s == "" {
		return "(missing)"
	}
	return s
}

// resultLine is the one line printed on stdout.
func resultLine(r report, faults []faultRecord, kinds []string, seed uint64, net string) string {
	used := map[string]bool{}
	for _, f := range faults {
		if f.Err == "" {
			used[f.Kind] = true
		}
	}
	var ks []string
	for _, k := range kinds {
		if used[k] {
			ks = append(ks, k)
		}
	}
	return fmt.Sprintf("RESULT ok=%t acked=%d lost=%d dup_keys=%d wrong_state=%d diverged=%d stuck=%d stale_results=%d leaders=%d voters_mismatch=%d faults=%d kinds=%s seed=%d net=%s stale_reads=%d minority_acks=%d"+
		" periodic_ticks=%d periodic_fired=%d periodic_skipped=%d periodic_dups=%d periodic_bad_ticks=%d periodic_stalls=%d",
		r.ok(), r.Acked, r.Lost, r.DupKeys, r.WrongState, r.Diverged, r.Stuck, r.StaleResults, r.Leaders, r.VotersMismatch,
		len(faults), strings.Join(ks, ","), seed, net, r.StaleReads, r.MinorityAcks,
		r.PeriodicTicks, r.PeriodicFired, r.PeriodicSkipped, r.PeriodicDups, r.PeriodicBadTicks, r.PeriodicStalls)
}
