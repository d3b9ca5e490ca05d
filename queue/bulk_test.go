package queue

import (
	"bytes"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// failAll claims every queued job of plugin on node n1 and reports each
// as failed (jobs with MaxAttempts 1 end failed), one report per entry so
// they end in submission order.
func (h *harness) failAll(plugin string) {
	h.t.Helper()
	for _, l := range h.claim("n1", plugin, 1000) {
		if err := h.report("n1", l, OutcomeFailed, "boom"); err != nil {
			h.t.Fatal(err)
		}
	}
}

// statesOf returns the states of ids.
func (h *harness) statesOf(ids []string) []State {
	out := make([]State, len(ids))
	for i, id := range ids {
		out[i] = h.job(id).State
	}
	return out
}

// bulkFixture builds a store with failed, cancelled and succeeded jobs in
// two queues and two plugins, created an hour apart: old (created at t0)
// and young (created at t0+1h).
type bulkFixture struct {
	h *harness
	// failed jobs by queue/plugin/age.
	oldMailA, oldMailB, oldWebA, youngMailA []string
	cancelled, succeeded                    []string
}

func newBulkFixture(t *testing.T) *bulkFixture {
	f := &bulkFixture{h: newHarness(t)}
	h := f.h
	f.oldMailA = h.submit(Spec{Queue: "mail", Plugin: "a", MaxAttempts: 1}, Spec{Queue: "mail", Plugin: "a", MaxAttempts: 1})
	f.oldMailB = h.submit(Spec{Queue: "mail", Plugin: "b", MaxAttempts: 1})
	f.oldWebA = h.submit(Spec{Queue: "web", Plugin: "a", MaxAttempts: 1})
	f.cancelled = h.submit(Spec{Queue: "mail", Plugin: "c"})
	h.one(&Cancel{ID: f.cancelled[0]})
	f.succeeded = h.submit(Spec{Queue: "mail", Plugin: "s"})
	if err := h.report("n1", h.claim("n1", "s", 1)[0], OutcomeSucceeded, "ok"); err != nil {
		t.Fatal(err)
	}
	h.advance(time.Hour)
	f.youngMailA = h.submit(Spec{Queue: "mail", Plugin: "a", MaxAttempts: 1})
	h.failAll("a")
	h.failAll("b")
	h.advance(time.Minute)
	return f
}

// TestBulkRetryFilters: each filter field narrows the retried set to
// exactly the matching failed or cancelled jobs; succeeded jobs are never
// touched.
func TestBulkRetryFilters(t *testing.T) {
	cases := []struct {
		name   string
		filter BulkFilter
		want   func(f *bulkFixture) []string
	}{
		{"everything", BulkFilter{}, func(f *bulkFixture) []string {
			return slices.Concat(f.oldMailA, f.oldMailB, f.oldWebA, f.youngMailA, f.cancelled)
		}},
		{"state failed", BulkFilter{State: StateFailed}, func(f *bulkFixture) []string {
			return slices.Concat(f.oldMailA, f.oldMailB, f.oldWebA, f.youngMailA)
		}},
		{"state cancelled", BulkFilter{State: StateCancelled}, func(f *bulkFixture) []string { return f.cancelled }},
		{"queue", BulkFilter{Queue: "web"}, func(f *bulkFixture) []string { return f.oldWebA }},
		{"plugin", BulkFilter{Plugin: "a"}, func(f *bulkFixture) []string {
			return slices.Concat(f.oldMailA, f.oldWebA, f.youngMailA)
		}},
		{"queue and plugin", BulkFilter{Queue: "mail", Plugin: "a"}, func(f *bulkFixture) []string {
			return slices.Concat(f.oldMailA, f.youngMailA)
		}},
		{"older than", BulkFilter{OlderThan: 30 * time.Minute, State: StateFailed}, func(f *bulkFixture) []string {
			return slices.Concat(f.oldMailA, f.oldMailB, f.oldWebA)
		}},
		{"created before", BulkFilter{CreatedBefore: t0.Add(time.Hour)}, func(f *bulkFixture) []string {
			return slices.Concat(f.oldMailA, f.oldMailB, f.oldWebA, f.cancelled)
		}},
		{"unknown queue", BulkFilter{Queue: "nope"}, func(f *bulkFixture) []string { return nil }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newBulkFixture(t)
			h := f.h
			all := slices.Concat(f.oldMailA, f.oldMailB, f.oldWebA, f.youngMailA, f.cancelled, f.succeeded)
			want := tc.want(f)
			if n, err := h.s.CountBulk(KindBulkRetry, tc.filter, h.now); err != nil || n != len(want) {
				t.Fatalf("dry run counted %d (%v), want %d", n, err, len(want))
			}
			before := dump(h.s)
			r := h.one(&BulkRetry{Filter: tc.filter})
			if r.Err != nil || r.Count != len(want) || r.More {
				t.Fatalf("bulk retry: count %d more %v err %v, want %d", r.Count, r.More, r.Err, len(want))
			}
			for _, id := range all {
				old := findJob(before, id)
				j := h.job(id)
				if slices.Contains(want, id) {
					if j.State != StateQueued || j.Error != "" || !j.FinishedAt.IsZero() {
						t.Fatalf("job %s (%s) not retried: %+v", id, old.State, j)
					}
				} else if j.State != old.State || j.Index != old.Index {
					t.Fatalf("job %s (%s) changed to %s", id, old.State, j.State)
				}
			}
		})
	}
}

func findJob(d dumpedState, id string) Job {
	for _, j := range d.Jobs {
		if j.ID == id {
			return j
		}
	}
	return Job{}
}

// TestBulkLimitMoreAndOrder: a bulk retry changes at most Limit jobs per
// command, in the order the jobs failed, says whether more remain, and
// the batches together retry each job exactly once.
func TestBulkLimitMoreAndOrder(t *testing.T) {
	h := newHarness(t)
	ids := h.submit(slices.Repeat([]Spec{{Plugin: "p", MaxAttempts: 1}}, 7)...)
	h.failAll("p")
	var got []string
	for i, want := range []struct {
		count int
		more  bool
	}{{3, true}, {3, true}, {1, false}, {0, false}} {
		before := dump(h.s)
		r := h.one(&BulkRetry{Filter: BulkFilter{State: StateFailed, Limit: 3}})
		if r.Err != nil || r.Count != want.count || r.More != want.more {
			t.Fatalf("batch %d: count %d more %v err %v, want %d %v", i, r.Count, r.More, r.Err, want.count, want.more)
		}
		for _, j := range h.s.List(Filter{State: StateQueued}) {
			if findJob(before, j.ID).State == StateFailed {
				got = append(got, j.ID)
			}
		}
	}
	slices.Sort(got)
	if !reflect.DeepEqual(got, ids) {
		t.Fatalf("retried %v, want each of %v once", got, ids)
	}
	// Jobs failing in the reverse of their creation order: the first
	// batch takes the three that failed first.
	h2 := newHarness(t)
	ids2 := h2.submit(slices.Repeat([]Spec{{Plugin: "p", MaxAttempts: 1}}, 7)...)
	ls := h2.claim("n1", "p", 7)
	for i := len(ls) - 1; i >= 0; i-- {
		h2.advance(time.Second)
		if err := h2.report("n1", ls[i], OutcomeFailed, "boom"); err != nil {
			t.Fatal(err)
		}
	}
	h2.one(&BulkRetry{Filter: BulkFilter{Limit: 3}})
	if st := h2.statesOf(ids2); !reflect.DeepEqual(st, []State{StateFailed, StateFailed, StateFailed, StateFailed, StateQueued, StateQueued, StateQueued}) {
		t.Fatalf("first batch of 3 did not take the three that failed first: %v", st)
	}
	// Limit 0 is the default batch.
	h3 := newHarness(t)
	h3.submit(slices.Repeat([]Spec{{Plugin: "p"}}, DefaultBulkLimit+1)...)
	if r := h3.one(&BulkCancel{}); r.Count != DefaultBulkLimit || !r.More {
		t.Fatalf("default limit: count %d more %v", r.Count, r.More)
	}
}

// TestBulkSameAsSingleCommands: a bulk retry or cancel leaves exactly the
// state that the single Retry or Cancel of the same jobs, in the bulk's
// order and in one entry, leaves: the per-job rule is the same one.
func TestBulkSameAsSingleCommands(t *testing.T) {
	build := func() *harness {
		h := newHarness(t)
		h.submit(Spec{Plugin: "p", MaxAttempts: 1}, Spec{Plugin: "p", MaxAttempts: 3}, Spec{Plugin: "q"})
		ls := h.claim("n1", "p", 2)
		_ = h.report("n1", ls[0], OutcomeFailed, "boom")
		_ = h.report("n1", ls[1], OutcomeFailed, "boom") // attempts left: scheduled
		h.submit(Spec{Plugin: "p", RunAt: h.now.Add(time.Hour)}, Spec{Plugin: "p", Priority: 5}, Spec{Plugin: "p"})
		h.claim("n2", "q", 1)
		h.advance(time.Second)
		return h
	}
	for _, k := range []Kind{KindBulkRetry, KindBulkCancel} {
		bulk, single := build(), build()
		bulk.s.mu.RLock()
		ids, _ := bulk.s.st.bulkMatch(k, &BulkFilter{Through: ^uint64(0)}, -1)
		bulk.s.mu.RUnlock()
		var c Command = &BulkRetry{}
		if k == KindBulkCancel {
			c = &BulkCancel{}
		}
		var cmds []Command
		for _, id := range ids {
			if k == KindBulkRetry {
				cmds = append(cmds, &Retry{ID: id})
			} else {
				cmds = append(cmds, &Cancel{ID: id})
			}
		}
		if len(ids) == 0 {
			t.Fatalf("kind %d matched nothing", k)
		}
		r := bulk.one(c)
		single.apply(cmds...)
		if r.Count != len(ids) {
			t.Fatalf("kind %d: count %d for %d jobs", k, r.Count, len(ids))
		}
		assertSameState(t, dump(single.s), dump(bulk.s))
	}
}

// TestBulkCancelRules: scheduled and queued jobs end cancelled at once, a
// running job gets a cancel request (and ends cancelled on its report); a
// second bulk cancel finds nothing left to do, so a batching client
// stops.
func TestBulkCancelRules(t *testing.T) {
	h := newHarness(t)
	sched := h.submit(Spec{Plugin: "p", RunAt: h.now.Add(time.Hour)})
	run := h.submit(Spec{Plugin: "r"}, Spec{Plugin: "r"})
	queued := h.submit(Spec{Plugin: "p"}, Spec{Queue: "other", Plugin: "p"})
	done := h.submit(Spec{Plugin: "d"})
	ls := h.claim("n1", "r", 2)
	if err := h.report("n1", h.claim("n1", "d", 1)[0], OutcomeSucceeded, "ok"); err != nil {
		t.Fatal(err)
	}
	if r := h.one(&BulkCancel{Filter: BulkFilter{State: StateRunning, Limit: 1}}); r.Count != 1 || !r.More {
		t.Fatalf("running, limit 1: %+v", r)
	}
	r := h.one(&BulkCancel{})
	if r.Err != nil || r.Count != 4 || r.More {
		t.Fatalf("bulk cancel: %+v", r)
	}
	for _, id := range slices.Concat(sched, queued) {
		if j := h.job(id); j.State != StateCancelled || !j.FinishedAt.Equal(h.now) {
			t.Fatalf("waiting job after bulk cancel: %+v", j)
		}
	}
	for _, id := range run {
		if j := h.job(id); j.State != StateRunning || !j.CancelRequested {
			t.Fatalf("running job after bulk cancel: %+v", j)
		}
	}
	if j := h.job(done[0]); j.State != StateSucceeded {
		t.Fatalf("succeeded job after bulk cancel: %s", j.State)
	}
	before := dump(h.s)
	if r := h.one(&BulkCancel{}); r.Count != 0 || r.More {
		t.Fatalf("second bulk cancel: count %d more %v (cancel-requested jobs must not match again)", r.Count, r.More)
	}
	if n, _ := h.s.CountBulk(KindBulkCancel, BulkFilter{}, h.now); n != 0 {
		t.Fatalf("dry run after everything was cancelled: %d", n)
	}
	assertSameState(t, before, dump(h.s))
	for _, l := range ls {
		if err := h.report("n1", l, OutcomeFailed, "context canceled"); err != nil {
			t.Fatal(err)
		}
	}
	if st := h.statesOf(run); !reflect.DeepEqual(st, []State{StateCancelled, StateCancelled}) {
		t.Fatalf("cancel-requested jobs after their reports: %v", st)
	}
}

// TestBulkCutoffFromEntryTime: OlderThan is turned into an absolute cutoff
// from the entry's (leader's) time and returned; a later batch that
// passes it on as CreatedBefore uses the same cutoff though time moved on.
// The cutoff is strict: a job created at the cutoff is not older.
func TestBulkCutoffFromEntryTime(t *testing.T) {
	h := newHarness(t)
	old := h.submit(Spec{Plugin: "p"}, Spec{Plugin: "p"})
	h.advance(50 * time.Minute)
	young := h.submit(Spec{Plugin: "p"})
	h.advance(10*time.Minute + time.Second)
	r := h.one(&BulkCancel{Filter: BulkFilter{OlderThan: time.Hour, Limit: 1}})
	if want := t0.Add(time.Second); r.Err != nil || r.Count != 1 || !r.More || !r.Resume.CreatedBefore.Equal(want) || r.Resume.OlderThan != 0 {
		t.Fatalf("first batch: %+v %+v, want cutoff %s", r, r.Resume, want)
	}
	h.advance(time.Hour) // young is now older than an hour too
	r2 := h.one(&BulkCancel{Filter: *r.Resume})
	if r2.Count != 1 || r2.More || !r2.Resume.CreatedBefore.Equal(r.Resume.CreatedBefore) {
		t.Fatalf("second batch: %+v", r2)
	}
	if r3 := h.one(&BulkCancel{Filter: BulkFilter{CreatedBefore: r.Resume.CreatedBefore}}); r3.Count != 0 || r3.More {
		t.Fatalf("third batch with the first cutoff: %+v", r3)
	}
	if st := h.statesOf(slices.Concat(old, young)); !reflect.DeepEqual(st, []State{StateCancelled, StateCancelled, StateQueued}) {
		t.Fatalf("states %v", st)
	}
	if r4 := h.one(&BulkCancel{Filter: BulkFilter{CreatedBefore: t0.Add(50 * time.Minute)}}); r4.Count != 0 {
		t.Fatalf("a job created at the cutoff matched: %+v", r4)
	}
	if r5 := h.one(&BulkCancel{Filter: BulkFilter{OlderThan: time.Hour}}); r5.Count != 1 || h.job(young[0]).State != StateCancelled {
		t.Fatalf("older than an hour, an hour later: %+v", r5)
	}
}

// TestBulkOperationEnds: an operation acts on the jobs that matched when
// it began. A retried job that fails again before the next batch, and a
// job that fails for the first time meanwhile, are left for a new
// operation, so batching ends even while jobs keep failing.
func TestBulkOperationEnds(t *testing.T) {
	h := newHarness(t)
	ids := h.submit(slices.Repeat([]Spec{{Plugin: "p", MaxAttempts: 1}}, 3)...)
	late := h.submit(Spec{Plugin: "late", MaxAttempts: 1})
	h.failAll("p")
	lateLease := h.claim("n1", "late", 1)
	f := BulkFilter{State: StateFailed, Limit: 1}
	retried := map[string]int{}
	for batch := 0; ; batch++ {
		if batch > 5 {
			t.Fatal("the operation does not end while retried jobs fail again")
		}
		r := h.one(&BulkRetry{Filter: f})
		if r.Err != nil || r.Resume == nil || r.Resume.Through == 0 {
			t.Fatalf("batch %d: %+v", batch, r)
		}
		for _, l := range h.claim("n1", "p", 10) {
			retried[l.Job.ID]++
			if err := h.report("n1", l, OutcomeFailed, "again"); err != nil {
				t.Fatal(err)
			}
		}
		if batch == 0 {
			if err := h.report("n1", lateLease[0], OutcomeFailed, "late"); err != nil {
				t.Fatal(err)
			}
		}
		if !r.More {
			break
		}
		f = *r.Resume
	}
	if len(retried) != 3 || retried[ids[0]] != 1 || retried[ids[1]] != 1 || retried[ids[2]] != 1 {
		t.Fatalf("retried %v, want each of %v once", retried, ids)
	}
	if j := h.job(late[0]); j.State != StateFailed || j.Attempt != 1 {
		t.Fatalf("job that failed during the operation: %+v", j)
	}
	// A new operation takes them all again.
	if r := h.one(&BulkRetry{Filter: BulkFilter{State: StateFailed}}); r.Count != 4 {
		t.Fatalf("a new operation retried %d, want 4", r.Count)
	}
}

// TestBulkValidation: bad filters are refused by the FSM with
// ErrBadFilter and change nothing.
func TestBulkValidation(t *testing.T) {
	f := newBulkFixture(t)
	h := f.h
	h.submit(Spec{Plugin: "p"})
	cases := []struct {
		cmd  Command
		want string
	}{
		{&BulkRetry{Filter: BulkFilter{State: StateQueued}}, "cannot retry queued jobs (state must be failed or cancelled)"},
		{&BulkRetry{Filter: BulkFilter{State: StateSucceeded}}, "cannot retry succeeded jobs"},
		{&BulkCancel{Filter: BulkFilter{State: StateFailed}}, "cannot cancel failed jobs (state must be blocked or scheduled or queued or running)"},
		{&BulkCancel{Filter: BulkFilter{State: State(99)}}, "cannot cancel"},
		{&BulkRetry{Filter: BulkFilter{Limit: -1}}, "limit -1"},
		{&BulkRetry{Filter: BulkFilter{Limit: MaxBulkLimit + 1}}, "limit 10001 is outside [0, 10000]"},
		{&BulkRetry{Filter: BulkFilter{Queue: "a/b"}}, "queue name"},
		{&BulkCancel{Filter: BulkFilter{Plugin: "../sh"}}, "plugin name"},
		{&BulkCancel{Filter: BulkFilter{OlderThan: -time.Second}}, "older_than -1s is negative"},
		{&BulkCancel{Filter: BulkFilter{OlderThan: time.Second, CreatedBefore: t0}}, "not both"},
	}
	before := dump(h.s)
	for _, tc := range cases {
		r := h.one(tc.cmd)
		if !errors.Is(r.Err, ErrBadFilter) || !strings.Contains(r.Err.Error(), tc.want) {
			t.Errorf("%T %+v: err %v, want %q", tc.cmd, tc.cmd, r.Err, tc.want)
		}
	}
	assertSameState(t, before, dump(h.s))
	if _, err := h.s.CountBulk(KindBulkRetry, BulkFilter{State: StateRunning}, h.now); !errors.Is(err, ErrBadFilter) {
		t.Fatalf("dry run with a bad state: %v", err)
	}
}

// TestDeleteQueue: a queue with jobs (even finished ones) is refused,
// saying how many it holds, and is left untouched; once empty it is
// deleted with its settings, and a later submit creates it afresh.
func TestDeleteQueue(t *testing.T) {
	h := newHarness(t)
	h.one(&SetQueue{Name: "defualt", Fields: FieldPaused | FieldRetention, Config: QueueConfig{Paused: true, Retention: time.Hour}})
	ids := h.submit(Spec{Queue: "defualt", Plugin: "p"}, Spec{Queue: "defualt", Plugin: "p"})
	h.one(&Cancel{ID: ids[0]})
	before := dump(h.s)
	r := h.one(&DeleteQueue{Name: "defualt"})
	if !errors.Is(r.Err, ErrQueueNotEmpty) || !strings.Contains(r.Err.Error(), "defualt still holds 2 jobs (1 queued, 1 cancelled)") {
		t.Fatalf("delete of a queue with jobs: %v", r.Err)
	}
	assertSameState(t, before, dump(h.s))
	h.one(&Cancel{ID: ids[1]})
	if r := h.one(&DeleteQueue{Name: "defualt"}); !errors.Is(r.Err, ErrQueueNotEmpty) || !strings.Contains(r.Err.Error(), "2 cancelled") {
		t.Fatalf("delete of a queue with only finished jobs: %v", r.Err)
	}
	h.advance(time.Hour)
	h.one(&Purge{})
	if r := h.one(&DeleteQueue{Name: "defualt"}); r.Err != nil {
		t.Fatalf("delete of an empty queue: %v", r.Err)
	}
	for _, q := range h.s.Queues() {
		if q.Name == "defualt" {
			t.Fatal("deleted queue still listed")
		}
	}
	// Deleted with its settings: the snapshot has no trace of it either.
	restored := New()
	if err := restored.Restore(bytes.NewReader(snapshotBytes(t, h.s))); err != nil {
		t.Fatal(err)
	}
	assertSameState(t, dump(h.s), dump(restored))
	if r := h.one(&DeleteQueue{Name: "defualt"}); !errors.Is(r.Err, ErrQueueNotFound) {
		t.Fatalf("delete twice: %v", r.Err)
	}
	if r := h.one(&DeleteQueue{Name: "a/b"}); !errors.Is(r.Err, ErrBadQueue) {
		t.Fatalf("delete of an invalid name: %v", r.Err)
	}
	h.submit(Spec{Queue: "defualt", Plugin: "p"})
	if got := h.claim("n1", "p", 1); len(got) != 1 {
		t.Fatal("a queue recreated after its delete kept the old pause")
	}
}

// TestBulkCodec: the bulk commands round-trip through the log codec, and
// every truncation of them is rejected.
func TestBulkCodec(t *testing.T) {
	e := Entry{Now: t0, Cmds: []Command{
		&BulkRetry{Filter: BulkFilter{Queue: "mail", State: StateFailed, Plugin: "exec", CreatedBefore: t0.Add(-time.Hour), Through: 1 << 40, Limit: 500}},
		&BulkCancel{Filter: BulkFilter{State: StateRunning, OlderThan: time.Hour}},
		&BulkCancel{},
		&DeleteQueue{Name: "defualt"},
	}}
	got := roundTrip(t, e)
	if f := got.Cmds[0].(*BulkRetry).Filter; f.Queue != "mail" || f.State != StateFailed || f.Plugin != "exec" || !f.CreatedBefore.Equal(t0.Add(-time.Hour)) || f.Through != 1<<40 || f.Limit != 500 {
		t.Fatalf("decoded filter %+v", f)
	}
	if got.Cmds[1].(*BulkCancel).Filter.OlderThan != time.Hour || got.Cmds[3].(*DeleteQueue).Name != "defualt" {
		t.Fatalf("decoded %+v %+v", got.Cmds[1], got.Cmds[3])
	}
}

// TestBulkAndBlockedJobs: a bulk cancel reaches jobs blocked on their
// parents (by state or with no state filter), and a queue that holds only
// blocked jobs is not empty.
func TestBulkAndBlockedJobs(t *testing.T) {
	h := newHarness(t)
	ids := h.mustDAG(Spec{Queue: "etl", Plugin: "p"}, Spec{Queue: "etl", Plugin: "p", DependsOn: []string{"#0"}},
		Spec{Queue: "etl", Plugin: "p", DependsOn: []string{"#1"}})
	h.wantState(ids[1], StateBlocked)
	before := dump(h.s)
	if r := h.one(&DeleteQueue{Name: "etl"}); !errors.Is(r.Err, ErrQueueNotEmpty) || !strings.Contains(r.Err.Error(), "2 blocked") {
		t.Fatalf("delete of a queue with blocked jobs: %v", r.Err)
	}
	assertSameState(t, before, dump(h.s))

	r := h.one(&BulkCancel{Filter: BulkFilter{Queue: "etl", State: StateBlocked}})
	if r.Err != nil || r.Count != 2 || r.More {
		t.Fatalf("bulk cancel of blocked jobs = %d more=%v err=%v, want 2", r.Count, r.More, r.Err)
	}
	h.wantState(ids[0], StateQueued)
	h.wantState(ids[1], StateCancelled)
	h.wantState(ids[2], StateCancelled)

	more := h.mustDAG(Spec{Queue: "etl", Plugin: "p", DependsOn: []string{ids[0]}})
	if r := h.one(&BulkCancel{Filter: BulkFilter{Queue: "etl"}}); r.Err != nil || r.Count != 2 {
		t.Fatalf("bulk cancel of every unfinished job = %d, %v; want the queued parent and its blocked child", r.Count, r.Err)
	}
	h.wantState(more[0], StateCancelled)
}

// TestBulkRetryBringsBackACancelledChain: a failed parent cancels its
// chain; a bulk retry of the queue's failed and cancelled jobs retries the
// parent and then the children it unblocks, whatever their order.
func TestBulkRetryBringsBackACancelledChain(t *testing.T) {
	h := newHarness(t)
	// The children sort before their parent (by ID, all finished at the
	// same time), so one pass in order would refuse them.
	ids := h.mustDAG(Spec{Queue: "etl", Plugin: "p", DependsOn: []string{"#1"}}, Spec{Queue: "etl", Plugin: "p", DependsOn: []string{"#2"}},
		Spec{Queue: "etl", Plugin: "p", MaxAttempts: 1})
	h.runOne("p", ids[2], OutcomeFailed)
	h.wantState(ids[2], StateFailed)
	h.wantState(ids[0], StateCancelled)
	r := h.one(&BulkRetry{Filter: BulkFilter{Queue: "etl"}})
	if r.Err != nil || r.Count != 3 {
		t.Fatalf("bulk retry = %d, %v; want the parent and both children", r.Count, r.Err)
	}
	h.wantState(ids[2], StateQueued)
	h.wantState(ids[1], StateBlocked)
	h.wantState(ids[0], StateBlocked)
}
