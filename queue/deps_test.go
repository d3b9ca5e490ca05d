package queue

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// dag submits a SubmitDAG of specs with fresh IDs; a spec's DependsOn may
// name batch jobs by "#i" (the i-th spec of this batch).
func (h *harness) dag(specs ...Spec) ([]string, Result) {
	h.t.Helper()
	ids := h.newIDs(len(specs))
	for i := range specs {
		deps := slices.Clone(specs[i].DependsOn)
		for k, d := range deps {
			if strings.HasPrefix(d, "#") {
				deps[k] = ids[int(d[1]-'0')]
			}
		}
		specs[i].DependsOn = deps
	}
	return ids, h.one(&SubmitDAG{IDs: ids, Specs: specs})
}

// mustDAG is dag failing the test unless every job was created.
func (h *harness) mustDAG(specs ...Spec) []string {
	h.t.Helper()
	ids, r := h.dag(specs...)
	if r.Err != nil {
		h.t.Fatalf("submit dag: %v", r.Err)
	}
	for i, s := range r.Submitted {
		if s.Err != nil || s.Existing || s.ID != ids[i] {
			h.t.Fatalf("dag spec %d: %+v", i, s)
		}
	}
	return ids
}

// runOne claims the one job of plugin p and reports outcome for it.
func (h *harness) runOne(p string, want string, o Outcome) {
	h.t.Helper()
	ls := h.claim("n1", p, 10)
	if got := leaseIDs(ls); len(got) != 1 || got[0] != want {
		h.t.Fatalf("claim of %s gave %v, want [%s]", p, got, want)
	}
	if err := h.report("n1", ls[0], o, "x"); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) wantState(id string, want State) *Job {
	h.t.Helper()
	j := h.job(id)
	if j.State != want {
		h.t.Fatalf("job %s is %s, want %s (error %q)", id, j.State, want, j.Error)
	}
	return j
}

// A chain runs in order: a child is blocked (and never claimed) until its
// last parent succeeded, then queued at the back of the FIFO order.
func TestDepsChainUnblocksInOrder(t *testing.T) {
	h := newHarness(t)
	ids := h.mustDAG(
		Spec{Plugin: "p"},
		Spec{Plugin: "p", DependsOn: []string{"#0"}},
		Spec{Plugin: "p", DependsOn: []string{"#1"}},
	)
	a, b, c := ids[0], ids[1], ids[2]
	h.wantState(a, StateQueued)
	h.wantState(b, StateBlocked)
	h.wantState(c, StateBlocked)
	if got := h.s.Children(a); !slices.Equal(got, []string{b}) {
		t.Fatalf("children of a: %v", got)
	}
	if got := h.job(c).DependsOn; !slices.Equal(got, []string{b}) {
		t.Fatalf("parents of c: %v", got)
	}
	other := h.submit(Spec{Plugin: "p"})[0]

	ls := h.claim("n1", "p", 10) // a and other; never b or c
	if got := leaseIDs(ls); !slices.Equal(got, []string{a, other}) {
		t.Fatalf("claimed %v, want [%s %s]", got, a, other)
	}
	late := h.submit(Spec{Plugin: "p"})[0]
	h.report("n1", ls[0], OutcomeSucceeded, "a")
	bj := h.wantState(b, StateQueued)
	if lj := h.job(late); bj.Seq <= lj.Seq {
		t.Fatalf("unblocked job seq %d is not behind the job queued before it (%d)", bj.Seq, lj.Seq)
	}
	h.wantState(c, StateBlocked)
	if got := leaseIDs(h.claim("n1", "p", 10)); !slices.Equal(got, []string{late, b}) {
		t.Fatalf("claimed %v, want [%s %s] (FIFO: the unblocked job at the back)", got, late, b)
	}
}

// A child waits for every parent; an already succeeded parent is no wait;
// an unblocked child with a future run_at is scheduled.
func TestDepsWaitsForEveryParent(t *testing.T) {
	h := newHarness(t)
	done := h.submit(Spec{Plugin: "d"})[0]
	h.runOne("d", done, OutcomeSucceeded)
	ids := h.mustDAG(
		Spec{Plugin: "a"},
		Spec{Plugin: "b"},
		Spec{Plugin: "c", DependsOn: []string{"#0", "#1", done}, RunAt: t0.Add(time.Hour)},
		Spec{Plugin: "c", DependsOn: []string{done}},
	)
	h.wantState(ids[3], StateQueued) // a succeeded parent is no wait
	h.runOne("a", ids[0], OutcomeSucceeded)
	h.wantState(ids[2], StateBlocked)
	h.runOne("b", ids[1], OutcomeSucceeded)
	h.wantState(ids[2], StateScheduled)
	h.advance(2 * time.Hour)
	h.one(&ExpireLeases{})
	h.wantState(ids[2], StateQueued)
}

// A failed parent (no attempts left) cancels its blocked descendants with
// the reason; a retried (not failed) parent cancels nothing.
func TestDepsFailureCascades(t *testing.T) {
	h := newHarness(t)
	ids := h.mustDAG(
		Spec{Plugin: "p", MaxAttempts: 2},
		Spec{Plugin: "q", DependsOn: []string{"#0"}},
		Spec{Plugin: "q", DependsOn: []string{"#1"}},
		Spec{Plugin: "q", DependsOn: []string{"#0", "#2"}},
	)
	a := ids[0]
	h.runOne("p", a, OutcomeFailed) // attempt 1 of 2: back to scheduled
	h.wantState(a, StateScheduled)
	h.wantState(ids[1], StateBlocked)
	h.advance(time.Hour)
	h.runOne("p", a, OutcomeFailed)
	h.wantState(a, StateFailed)
	if e := h.wantState(ids[1], StateCancelled).Error; e != "parent "+a+" failed" {
		t.Fatalf("child error %q", e)
	}
	if e := h.wantState(ids[2], StateCancelled).Error; e != "parent "+ids[1]+" cancelled: parent "+a+" failed" {
		t.Fatalf("grandchild error %q", e)
	}
	if e := h.wantState(ids[3], StateCancelled).Error; e != "parent "+a+" failed" {
		t.Fatalf("job with two paths: error %q", e)
	}
	if ls := h.claim("n1", "q", 10); len(ls) != 0 {
		t.Fatalf("claimed cancelled children %v", leaseIDs(ls))
	}
}

// Cancelling a parent (queued or running) cancels its blocked children;
// cancelling a blocked job works and cascades too.
func TestDepsCancelCascades(t *testing.T) {
	h := newHarness(t)
	ids := h.mustDAG(
		Spec{Plugin: "p"},
		Spec{Plugin: "p", DependsOn: []string{"#0"}},
		Spec{Plugin: "p", DependsOn: []string{"#1"}},
	)
	r := h.one(&Cancel{ID: ids[1]}) // blocked
	if r.Err != nil || r.Job.State != StateCancelled {
		t.Fatalf("cancel of a blocked job: %+v", r)
	}
	if e := h.wantState(ids[2], StateCancelled).Error; e != "parent "+ids[1]+" cancelled" {
		t.Fatalf("error %q", e)
	}
	h.wantState(ids[0], StateQueued)

	ids = h.mustDAG(Spec{Plugin: "r"}, Spec{Plugin: "r", DependsOn: []string{"#0"}})
	ls := h.claim("n1", "r", 1)
	h.one(&Cancel{ID: ids[0]})
	h.wantState(ids[1], StateBlocked) // still running: cancel requested only
	h.report("n1", ls[0], OutcomeCancelled, "cancelled")
	if e := h.wantState(ids[1], StateCancelled).Error; e != "parent "+ids[0]+" cancelled" {
		t.Fatalf("error %q", e)
	}
}

// Retry of a cancelled child is refused while its parent is failed; once
// the parent is retried the child goes back to blocked, then runs.
func TestDepsRetryChild(t *testing.T) {
	h := newHarness(t)
	ids := h.mustDAG(Spec{Plugin: "p", MaxAttempts: 1}, Spec{Plugin: "q", DependsOn: []string{"#0"}})
	h.runOne("p", ids[0], OutcomeFailed)
	h.wantState(ids[1], StateCancelled)
	r := h.one(&Retry{ID: ids[1]})
	if !errors.Is(r.Err, ErrNotRetryable) || !strings.Contains(r.Err.Error(), ids[0]) {
		t.Fatalf("retry with a failed parent: %v", r.Err)
	}
	h.wantState(ids[1], StateCancelled)
	h.one(&Retry{ID: ids[0]})
	if r := h.one(&Retry{ID: ids[1]}); r.Err != nil || r.Job.State != StateBlocked || r.Job.Error != "" {
		t.Fatalf("retry of the child: %+v", r)
	}
	h.runOne("p", ids[0], OutcomeSucceeded)
	h.runOne("q", ids[1], OutcomeSucceeded)
}

// A batch with a cycle, an unknown parent, a failed parent or an invalid
// spec is rejected as a whole, and nothing changes.
func TestDepsBadBatchIsAtomic(t *testing.T) {
	h := newHarness(t)
	failed := h.submit(Spec{Plugin: "f", MaxAttempts: 1})[0]
	h.runOne("f", failed, OutcomeFailed)
	ok := h.submit(Spec{Plugin: "p"})[0]
	for _, tc := range []struct {
		name  string
		specs []Spec
		want  string
	}{
		{"cycle", []Spec{{Plugin: "p"}, {Plugin: "p", DependsOn: []string{"#0", "#2"}}, {Plugin: "p", DependsOn: []string{"#1"}}}, "cycle: jobs[1]"},
		{"self", []Spec{{Plugin: "p", DependsOn: []string{"#0"}}}, "cycle: jobs[0]"},
		{"unknown parent", []Spec{{Plugin: "p"}, {Plugin: "p", DependsOn: []string{"#0", "nope"}}}, "parent nope not found"},
		{"failed parent", []Spec{{Plugin: "p"}, {Plugin: "p", DependsOn: []string{ok, failed}}}, "is failed"},
		{"bad spec", []Spec{{Plugin: "p"}, {DependsOn: []string{"#0"}}}, "plugin is required"},
		{"duplicate parent", []Spec{{Plugin: "p"}, {Plugin: "p", DependsOn: []string{"#0", "#0"}}}, "twice"},
		{"too many parents", []Spec{{Plugin: "p", DependsOn: slices.Repeat([]string{ok}, MaxParents+1)}}, "over the limit"},
		{"existing id", nil, "already exists"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := dump(h.s)
			var r Result
			if tc.specs == nil {
				r = h.one(&SubmitDAG{IDs: []string{"x1", ok}, Specs: []Spec{{Plugin: "p"}, {Plugin: "p"}}})
			} else {
				_, r = h.dag(tc.specs...)
			}
			if !errors.Is(r.Err, ErrBadSpec) || !strings.Contains(r.Err.Error(), tc.want) {
				t.Fatalf("got %v, want an ErrBadSpec containing %q", r.Err, tc.want)
			}
			if len(r.Submitted) != 0 {
				t.Fatalf("rejected batch has results %+v", r.Submitted)
			}
			after := dump(h.s)
			before.Seq, after.Seq = 0, 0
			assertSameState(t, before, after)
		})
	}
}

// A plain Submit carrying depends_on is refused (the encoding of Submit
// has no room for it).
func TestDepsPlainSubmitRefusesParents(t *testing.T) {
	s := New()
	res := s.ApplyEntry(1, Entry{Now: t0, Cmds: []Command{&Submit{IDs: []string{"a"}, Specs: []Spec{{Plugin: "p", DependsOn: []string{"x"}}}}}})
	if err := res[0].Submitted[0].Err; !errors.Is(err, ErrBadSpec) {
		t.Fatalf("got %v", err)
	}
	if _, ok := s.Get("a"); ok {
		t.Fatal("job created")
	}
}

// Unique keys work inside a batch: a spec matching a live job stands for
// it, and jobs depending on it wait for that job.
func TestDepsUniqueKey(t *testing.T) {
	h := newHarness(t)
	live := h.submit(Spec{Plugin: "p", UniqueKey: "k"})[0]
	ids, r := h.dag(
		Spec{Plugin: "p", UniqueKey: "k"},
		Spec{Plugin: "p", DependsOn: []string{"#0"}},
		Spec{Plugin: "r", UniqueKey: "k2"},
		Spec{Plugin: "r", UniqueKey: "k2", DependsOn: []string{"#1"}},
	)
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	if s := r.Submitted[0]; !s.Existing || s.ID != live {
		t.Fatalf("spec 0: %+v", s)
	}
	if s := r.Submitted[3]; !s.Existing || s.ID != ids[2] {
		t.Fatalf("spec 3: %+v", s)
	}
	if got := h.wantState(ids[1], StateBlocked).DependsOn; !slices.Equal(got, []string{live}) {
		t.Fatalf("parents %v, want [%s]", got, live)
	}
	if _, ok := h.s.Get(ids[0]); ok {
		t.Fatal("deduplicated spec created a job")
	}
	h.runOne("p", live, OutcomeSucceeded)
	h.wantState(ids[1], StateQueued)
}

// Purge keeps edges consistent: a child of a purged (succeeded) parent
// keeps waiting for its other parent, and a purged child leaves its
// parent's child list.
func TestDepsPurgeKeepsEdgesConsistent(t *testing.T) {
	h := newHarness(t)
	h.one(&SetQueue{Name: "short", Fields: FieldRetention, Config: QueueConfig{Retention: time.Minute}})
	ids := h.mustDAG(
		Spec{Queue: "short", Plugin: "a"},
		Spec{Plugin: "b"},
		Spec{Plugin: "c", DependsOn: []string{"#0", "#1"}},
	)
	h.runOne("a", ids[0], OutcomeSucceeded)
	h.advance(time.Hour)
	if n := h.one(&Purge{}).Count; n != 1 {
		t.Fatalf("purged %d jobs, want 1", n)
	}
	if got := h.wantState(ids[2], StateBlocked).DependsOn; !slices.Equal(got, []string{ids[1]}) {
		t.Fatalf("parents after purge %v", got)
	}
	h.runOne("b", ids[1], OutcomeSucceeded)
	h.wantState(ids[2], StateQueued)
	h.runOne("c", ids[2], OutcomeSucceeded)
	h.advance(48 * time.Hour)
	h.one(&Purge{})
	if len(h.s.Children(ids[1])) != 0 {
		t.Fatal("purged child still listed")
	}
}

// A snapshot keeps edges and blocked jobs: the restored store unblocks
// and cascades exactly like the original.
func TestDepsSnapshotRestore(t *testing.T) {
	h := newHarness(t)
	ids := h.mustDAG(
		Spec{Plugin: "p"},
		Spec{Plugin: "q", DependsOn: []string{"#0"}},
		Spec{Plugin: "p"},
		Spec{Plugin: "q", DependsOn: []string{"#2"}},
	)
	r := New()
	if err := r.Restore(bytes.NewReader(snapshotBytes(t, h.s))); err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, r)
	assertSameState(t, dump(h.s), dump(r))
	// Same entries on both: a success unblocks, a failure cascades.
	ls := h.claim("n1", "p", 2)
	rest := &harness{t: t, s: r, index: h.index - 1, now: h.now}
	rest.claim("n1", "p", 2)
	for _, x := range []*harness{h, rest} {
		x.report("n1", ls[0], OutcomeSucceeded, "ok")
		x.one(&Complete{Reports: []Report{{ID: ls[1].Job.ID, Token: ls[1].Token, Node: "n1", Outcome: OutcomeFailed, NonRetryable: true}}})
	}
	assertSameState(t, dump(h.s), dump(r))
	h.wantState(ids[1], StateQueued)
	h.wantState(ids[3], StateCancelled)
}

// A snapshot whose deps section breaks the rules is refused.
func TestDepsSnapshotRejectsBadEdges(t *testing.T) {
	h := newHarness(t)
	ids := h.mustDAG(Spec{Plugin: "p"}, Spec{Plugin: "p", DependsOn: []string{"#0"}})
	// Make the parent vanish behind the store's back: the section then
	// names an unknown parent.
	h.s.mu.Lock()
	delete(h.s.st.jobs, ids[0])
	h.s.st.queues["default"].counts[StateQueued]--
	h.s.mu.Unlock()
	var buf bytes.Buffer
	h.s.Snapshot().WriteTo(&buf)
	if err := New().Restore(&buf); !errors.Is(err, ErrBadSnapshot) {
		t.Fatalf("restore: %v", err)
	}
}

func TestFindCycle(t *testing.T) {
	for _, tc := range []struct {
		edges [][]int
		want  []int
	}{
		{[][]int{nil, {0}, {1, 0}}, nil},
		{[][]int{{1}, {2}, {0}}, []int{0, 1, 2, 0}},
		{[][]int{nil, {1}}, []int{1, 1}},
		{[][]int{{1}, {2}, {1}}, []int{1, 2, 1}},
	} {
		if got := FindCycle(tc.edges); !slices.Equal(got, tc.want) {
			t.Errorf("FindCycle(%v) = %v, want %v", tc.edges, got, tc.want)
		}
	}
}
