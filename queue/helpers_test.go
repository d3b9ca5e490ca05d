package queue

import (
	"bytes"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// t0 is the start of every test clock.
var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// harness drives a store through encoded entries, like raft would.
type harness struct {
	t     testing.TB
	s     *Store
	index uint64
	now   time.Time
	ids   int
}

func newHarness(t testing.TB) *harness {
	return &harness{t: t, s: New(), now: t0}
}

// advance moves the leader clock forward.
func (h *harness) advance(d time.Duration) { h.now = h.now.Add(d) }

// apply replicates one entry with the given commands and checks the
// store's invariants afterwards.
func (h *harness) apply(cmds ...Command) []Result {
	h.t.Helper()
	data, err := Encode(Entry{Now: h.now, Cmds: cmds})
	if err != nil {
		h.t.Fatalf("encode: %v", err)
	}
	h.index++
	res, err := h.s.Apply(h.index, data)
	if err != nil {
		h.t.Fatalf("apply: %v", err)
	}
	if len(res) != len(cmds) {
		h.t.Fatalf("got %d results for %d commands", len(res), len(cmds))
	}
	checkInvariants(h.t, h.s)
	return res
}

// one applies a single command and returns its result.
func (h *harness) one(c Command) Result {
	h.t.Helper()
	return h.apply(c)[0]
}

// newIDs returns n fresh job IDs that sort in creation order.
func (h *harness) newIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		h.ids++
		ids[i] = fmt.Sprintf("job-%06d", h.ids)
	}
	return ids
}

// submit submits the specs and fails the test unless each was created.
func (h *harness) submit(specs ...Spec) []string {
	h.t.Helper()
	r := h.one(&Submit{IDs: h.newIDs(len(specs)), Specs: specs})
	if r.Err != nil {
		h.t.Fatalf("submit: %v", r.Err)
	}
	ids := make([]string, len(specs))
	for i, sub := range r.Submitted {
		if sub.Err != nil || sub.Existing {
			h.t.Fatalf("submit spec %d: %+v", i, sub)
		}
		ids[i] = sub.ID
	}
	return ids
}

// claim claims up to n jobs of plugin for node and returns the leases.
func (h *harness) claim(node, plugin string, n int) []Lease {
	h.t.Helper()
	r := h.one(&Claim{Node: node, Slots: map[string]int{plugin: n}})
	if r.Err != nil {
		h.t.Fatalf("claim: %v", r.Err)
	}
	return r.Leases
}

// report completes one lease with the outcome and returns the report error.
func (h *harness) report(node string, l Lease, o Outcome, msg string) error {
	h.t.Helper()
	rep := Report{ID: l.Job.ID, Token: l.Token, Node: node, Outcome: o}
	if o == OutcomeSucceeded {
		rep.Result = []byte(msg)
	} else {
		rep.Error = msg
	}
	return h.completeOne(rep)
}

// completeOne applies a Complete with one report and returns its error,
// failing the test (not panicking) if the result has no report slot.
func (h *harness) completeOne(rep Report) error {
	h.t.Helper()
	r := h.one(&Complete{Reports: []Report{rep}})
	if len(r.Reports) != 1 {
		h.t.Fatalf("complete of one report gave %d results (err %v)", len(r.Reports), r.Err)
	}
	return r.Reports[0]
}

func (h *harness) job(id string) *Job {
	h.t.Helper()
	j, ok := h.s.Get(id)
	if !ok {
		h.t.Fatalf("job %s not found", id)
	}
	return j
}

func leaseIDs(ls []Lease) []string {
	ids := make([]string, len(ls))
	for i, l := range ls {
		ids[i] = l.Job.ID
	}
	return ids
}

// dumpState renders everything observable about a store (jobs, queues,
// counts) so two states can be compared exactly.
type dumpedState struct {
	Jobs      []Job
	Queues    []QueueInfo
	Periodics []PeriodicInfo
	Children  map[string][]string
	Seq       uint64
}

func dump(s *Store) dumpedState {
	s.mu.RLock()
	var d dumpedState
	for _, j := range s.st.jobs {
		d.Jobs = append(d.Jobs, *j)
	}
	d.Seq = s.st.seq
	d.Children = map[string][]string{}
	for id, kids := range s.st.children {
		d.Children[id] = slices.Clone(kids)
	}
	s.mu.RUnlock()
	slices.SortFunc(d.Jobs, func(a, b Job) int { return strings.Compare(a.ID, b.ID) })
	d.Queues = s.Queues()
	for _, p := range s.Periodics() {
		p.st = nil
		d.Periodics = append(d.Periodics, p)
	}
	return d
}

func assertSameState(t testing.TB, want, got dumpedState) {
	t.Helper()
	if !reflect.DeepEqual(want.Queues, got.Queues) {
		t.Fatalf("queues differ:\nwant %+v\n got %+v", want.Queues, got.Queues)
	}
	if !reflect.DeepEqual(want.Periodics, got.Periodics) {
		t.Fatalf("periodics differ:\nwant %+v\n got %+v", want.Periodics, got.Periodics)
	}
	if len(want.Jobs) != len(got.Jobs) {
		t.Fatalf("job count differs: want %d, got %d", len(want.Jobs), len(got.Jobs))
	}
	for i := range want.Jobs {
		if !reflect.DeepEqual(want.Jobs[i], got.Jobs[i]) {
			t.Fatalf("job differs:\nwant %+v\n got %+v", want.Jobs[i], got.Jobs[i])
		}
	}
	if !reflect.DeepEqual(want.Children, got.Children) {
		t.Fatalf("child lists differ:\nwant %v\n got %v", want.Children, got.Children)
	}
	if want.Seq != got.Seq {
		t.Fatalf("sequence counter differs: want %d, got %d", want.Seq, got.Seq)
	}
}

// checkInvariants verifies that the indexes agree with the jobs.
func checkInvariants(t testing.TB, s *Store) {
	t.Helper()
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.st.check(); err != nil {
		t.Fatalf("invariant violated: %v", err)
	}
}

// check returns the first inconsistency between jobs and indexes.
func (st *state) check() error {
	var counts = map[string]*[numStates]int{}
	for name := range st.queues {
		counts[name] = new([numStates]int)
	}
	running := 0
	for id, j := range st.jobs {
		if id != j.ID {
			return fmt.Errorf("job %s stored under %s", j.ID, id)
		}
		q := st.queues[j.Queue]
		if q == nil {
			return fmt.Errorf("job %s in unknown queue %q", id, j.Queue)
		}
		counts[j.Queue][j.State]++
		inSched := st.scheduled.Has(timeItem{nanos(j.RunAt), id})
		inLease := st.leases.Has(timeItem{nanos(j.LeaseExpiresAt), id})
		inDone := q.done.Has(timeItem{nanos(j.FinishedAt), id})
		var inReady bool
		if t := q.ready[j.Plugin]; t != nil {
			it, ok := t.Get(readyItem{prio: j.Priority, seq: j.Seq})
			inReady = ok && it.job == j
		}
		_, onNode := st.nodes[j.Node][id]
		want := [4]bool{j.State == StateScheduled, j.State == StateQueued, j.State == StateRunning, j.State.Terminal()}
		if got := [4]bool{inSched, inReady, inLease, inDone}; got != want {
			return fmt.Errorf("job %s (%s) index membership sched/ready/lease/done = %v", id, j.State, got)
		}
		if onNode != (j.State == StateRunning) {
			return fmt.Errorf("job %s (%s) node set membership %v", id, j.State, onNode)
		}
		if len(j.Attempts) != j.Attempt {
			return fmt.Errorf("job %s attempt %d with %d history entries", id, j.Attempt, len(j.Attempts))
		}
		switch j.State {
		case StateRunning:
			running++
			if j.Node == "" || j.Token == 0 || j.LeaseExpiresAt.IsZero() || j.Attempt > j.MaxAttempts {
				return fmt.Errorf("running job %s without a proper lease: %+v", id, j)
			}
			if a := j.Attempts[len(j.Attempts)-1]; a.Token != j.Token || !a.Finished.IsZero() {
				return fmt.Errorf("running job %s current attempt %+v", id, a)
			}
		case StateQueued, StateScheduled, StateBlocked:
			if j.Token != 0 || j.Attempt >= j.MaxAttempts || !j.FinishedAt.IsZero() {
				return fmt.Errorf("waiting job %s: %+v", id, j)
			}
		default:
			if j.Token != 0 || j.FinishedAt.IsZero() {
				return fmt.Errorf("terminal job %s: %+v", id, j)
			}
		}
		if j.Seq > st.seq || j.Token > st.seq {
			return fmt.Errorf("job %s seq/token beyond counter", id)
		}
		if j.holdsKey && st.unique[j.UniqueKey] != id {
			return fmt.Errorf("job %s holds key %q but the index says %q", id, j.UniqueKey, st.unique[j.UniqueKey])
		}
	}
	for name, q := range st.queues {
		if *counts[name] != q.counts {
			return fmt.Errorf("queue %s counts %v, jobs say %v", name, q.counts, *counts[name])
		}
		ready := 0
		for _, t := range q.ready {
			ready += t.Len()
		}
		if ready != q.counts[StateQueued] || q.done.Len() != q.counts[StateSucceeded]+q.counts[StateFailed]+q.counts[StateCancelled] {
			return fmt.Errorf("queue %s has stale index items", name)
		}
	}
	sched := 0
	for _, c := range counts {
		sched += c[StateScheduled]
	}
	if st.scheduled.Len() != sched || st.leases.Len() != running {
		return fmt.Errorf("stale scheduled/lease items")
	}
	onNodes := 0
	for _, set := range st.nodes {
		onNodes += len(set)
	}
	if onNodes != running {
		return fmt.Errorf("node sets hold %d jobs, %d running", onNodes, running)
	}
	if err := st.checkDeps(); err != nil {
		return err
	}
	for key, id := range st.unique {
		if j := st.jobs[id]; j == nil || !j.holdsKey || j.UniqueKey != key {
			return fmt.Errorf("unique key %q points at %s which does not hold it", key, id)
		}
	}
	return nil
}

// snapshotBytes writes a snapshot of s to memory.
func snapshotBytes(t testing.TB, s *Store) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := s.Snapshot().WriteTo(&buf); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	return buf.Bytes()
}

// checkDeps verifies the dependency edges and the blocked rules.
func (st *state) checkDeps() error {
	edges := 0
	for id, j := range st.jobs {
		waiting := false
		for _, pid := range j.DependsOn {
			p := st.jobs[pid]
			if p == nil {
				return fmt.Errorf("job %s lists parent %s which is not stored", id, pid)
			}
			if _, found := slices.BinarySearch(st.children[pid], id); !found {
				return fmt.Errorf("job %s lists parent %s whose children %v miss it", id, pid, st.children[pid])
			}
			edges++
			switch {
			case p.State == StateSucceeded:
			case j.State == StateBlocked && (p.State == StateFailed || p.State == StateCancelled):
				return fmt.Errorf("blocked job %s has a %s parent %s", id, p.State, pid)
			default:
				waiting = true
			}
		}
		switch j.State {
		case StateBlocked:
			if !waiting {
				return fmt.Errorf("blocked job %s waits for no parent", id)
			}
		case StateQueued, StateScheduled, StateRunning, StateSucceeded:
			if waiting {
				return fmt.Errorf("job %s is %s while a parent has not succeeded", id, j.State)
			}
		}
	}
	n := 0
	for pid, kids := range st.children {
		if len(kids) == 0 || !slices.IsSorted(kids) {
			return fmt.Errorf("children of %s: %v (empty or unsorted)", pid, kids)
		}
		for _, kid := range kids {
			if c := st.jobs[kid]; c == nil || !slices.Contains(c.DependsOn, pid) {
				return fmt.Errorf("%s lists child %s which does not list it", pid, kid)
			}
		}
		n += len(kids)
	}
	if n != edges {
		return fmt.Errorf("%d child edges, %d parent edges", n, edges)
	}
	return nil
}
