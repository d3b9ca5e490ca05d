package queue

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestClaimOrder(t *testing.T) {
	tests := []struct {
		name  string
		specs []Spec
		slots int
		want  []int // indexes into specs, in claim order
	}{
		{
			name:  "fifo within a priority",
			specs: []Spec{{Plugin: "p"}, {Plugin: "p"}, {Plugin: "p"}},
			slots: 3,
			want:  []int{0, 1, 2},
		},
		{
			name:  "higher priority first",
			specs: []Spec{{Plugin: "p", Priority: 1}, {Plugin: "p", Priority: 5}, {Plugin: "p", Priority: -3}, {Plugin: "p", Priority: 5}},
			slots: 4,
			want:  []int{1, 3, 0, 2},
		},
		{
			name:  "across queues by priority then age",
			specs: []Spec{{Queue: "a", Plugin: "p"}, {Queue: "b", Plugin: "p", Priority: 2}, {Queue: "b", Plugin: "p"}, {Queue: "a", Plugin: "p", Priority: 2}},
			slots: 3,
			want:  []int{1, 3, 0},
		},
		{
			name:  "other plugins are not handed out",
			specs: []Spec{{Plugin: "other"}, {Plugin: "p"}},
			slots: 2,
			want:  []int{1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			ids := h.submit(tt.specs...)
			var want []string
			for _, i := range tt.want {
				want = append(want, ids[i])
			}
			// Claim all at once, then (on a twin store) one at a time:
			// same order.
			got := leaseIDs(h.claim("n1", "p", tt.slots))
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("claim order %v, want %v", got, want)
			}
			h1 := newHarness(t)
			h1.submit(tt.specs...)
			var oneByOne []string
			for range tt.slots {
				oneByOne = append(oneByOne, leaseIDs(h1.claim("n1", "p", 1))...)
			}
			if !reflect.DeepEqual(oneByOne, want) {
				t.Fatalf("one-at-a-time claim order %v, want %v", oneByOne, want)
			}
		})
	}
}

func TestClaimLease(t *testing.T) {
	h := newHarness(t)
	ids := h.submit(Spec{Plugin: "p", Payload: []byte("x")})
	r := h.one(&Claim{Node: "n1", Slots: map[string]int{"p": 1}, LeaseTTL: 10 * time.Second})
	if len(r.Leases) != 1 {
		t.Fatalf("leases %v", r.Leases)
	}
	l := r.Leases[0]
	j := h.job(ids[0])
	if l.Job != j || j.State != StateRunning || j.Attempt != 1 || j.Node != "n1" || j.Token != l.Token || l.Token == 0 {
		t.Fatalf("claimed job %+v lease %+v", j, l)
	}
	if !j.LeaseExpiresAt.Equal(h.now.Add(10 * time.Second)) {
		t.Fatalf("lease expires %v", j.LeaseExpiresAt)
	}
	if len(j.Attempts) != 1 || j.Attempts[0].Node != "n1" || !j.Attempts[0].Started.Equal(h.now) || j.Attempts[0].Token != l.Token {
		t.Fatalf("attempts %+v", j.Attempts)
	}
	if got := h.s.Running("n1"); !reflect.DeepEqual(got, []LeaseRef{{ID: ids[0], Token: l.Token}}) {
		t.Fatalf("running %v", got)
	}
	// Default TTL, and tokens strictly increase.
	ids2 := h.submit(Spec{Plugin: "p"}, Spec{Plugin: "p"})
	ls := h.claim("n2", "p", 5)
	if len(ls) != 2 || ls[0].Token <= l.Token || ls[1].Token <= ls[0].Token {
		t.Fatalf("tokens %d then %v", l.Token, ls)
	}
	if got := h.job(ids2[0]).LeaseExpiresAt; !got.Equal(h.now.Add(DefaultLeaseTTL)) {
		t.Fatalf("default lease expires %v", got)
	}
	if r := h.one(&Claim{Slots: map[string]int{"p": 1}}); !errors.Is(r.Err, ErrBadCommand) {
		t.Fatalf("claim without node: %v", r.Err)
	}
}

func TestPauseResume(t *testing.T) {
	h := newHarness(t)
	h.one(&SetQueue{Name: "q", Fields: FieldPaused, Config: QueueConfig{Paused: true}})
	ids := h.submit(Spec{Queue: "q", Plugin: "p"})
	if got := h.claim("n1", "p", 1); len(got) != 0 {
		t.Fatalf("paused queue handed out %v", leaseIDs(got))
	}
	h.one(&SetQueue{Name: "q", Fields: FieldPaused, Config: QueueConfig{Paused: false}})
	if got := leaseIDs(h.claim("n1", "p", 1)); !reflect.DeepEqual(got, ids) {
		t.Fatalf("resumed queue handed out %v", got)
	}
}

func TestSetQueueFields(t *testing.T) {
	h := newHarness(t)
	h.one(&SetQueue{Name: "q", Fields: FieldConcurrency | FieldRetention, Config: QueueConfig{Concurrency: 3, Retention: time.Hour, MaxAttempts: 9, BackoffBase: time.Minute, Paused: true}})
	if qs := h.s.Queues(); len(qs) != 1 || qs[0].Config != (QueueConfig{Concurrency: 3, Retention: time.Hour}) {
		t.Fatalf("fields not named in the update were applied: %+v", qs)
	}
	h.one(&SetQueue{Name: "q", Fields: FieldPaused, Config: QueueConfig{Paused: true, Concurrency: 7}})
	qs := h.s.Queues()
	want := QueueConfig{Paused: true, Concurrency: 3, Retention: time.Hour}
	if len(qs) != 1 || qs[0].Name != "q" || qs[0].Config != want {
		t.Fatalf("queues %+v", qs)
	}
	for _, bad := range []*SetQueue{
		{Name: "bad name", Fields: FieldPaused},
		{Name: "q", Fields: FieldConcurrency, Config: QueueConfig{Concurrency: -1}},
		{Name: "q", Fields: 1 << 7},
	} {
		if r := h.one(bad); !errors.Is(r.Err, ErrBadQueue) {
			t.Fatalf("%+v: err %v", bad, r.Err)
		}
	}
	if qs2 := h.s.Queues(); !reflect.DeepEqual(qs, qs2) {
		t.Fatalf("rejected SetQueue changed queues: %+v", qs2)
	}
}

func TestConcurrencyLimit(t *testing.T) {
	h := newHarness(t)
	h.one(&SetQueue{Name: "q", Fields: FieldConcurrency, Config: QueueConfig{Concurrency: 2}})
	h.submit(Spec{Queue: "q", Plugin: "p"}, Spec{Queue: "q", Plugin: "p"}, Spec{Queue: "q", Plugin: "p"}, Spec{Queue: "free", Plugin: "p"})
	ls := h.claim("n1", "p", 5)
	if len(ls) != 3 {
		t.Fatalf("claimed %v, want 2 of q and 1 of free", leaseIDs(ls))
	}
	if got := h.claim("n2", "p", 5); len(got) != 0 {
		t.Fatalf("queue at its limit handed out %v", leaseIDs(got))
	}
	if err := h.report("n1", ls[0], OutcomeSucceeded, "ok"); err != nil {
		t.Fatal(err)
	}
	if got := h.claim("n2", "p", 5); len(got) != 1 {
		t.Fatalf("after one finished got %v, want 1", leaseIDs(got))
	}
}

func TestScheduledPromotion(t *testing.T) {
	h := newHarness(t)
	runAt := h.now.Add(time.Minute)
	ids := h.submit(Spec{Plugin: "p", RunAt: runAt}, Spec{Plugin: "p", RunAt: h.now.Add(-time.Second)})
	if j := h.job(ids[0]); j.State != StateScheduled {
		t.Fatalf("future job is %s", j.State)
	}
	if j := h.job(ids[1]); j.State != StateQueued {
		t.Fatalf("past job is %s", j.State)
	}
	if got := h.s.NextDeadline(); !got.Equal(runAt) {
		t.Fatalf("next deadline %v, want %v", got, runAt)
	}
	h.claim("n1", "p", 5) // takes the past one
	h.advance(59 * time.Second)
	if got := h.claim("n1", "p", 5); len(got) != 0 {
		t.Fatalf("claimed %v before run_at", leaseIDs(got))
	}
	h.advance(time.Second)
	if got := leaseIDs(h.claim("n1", "p", 5)); !reflect.DeepEqual(got, ids[:1]) {
		t.Fatalf("claimed %v at run_at", got)
	}
}

func TestLeaseExpiry(t *testing.T) {
	h := newHarness(t)
	ids := h.submit(Spec{Plugin: "p"})
	h.one(&Claim{Node: "n1", Slots: map[string]int{"p": 1}, LeaseTTL: 10 * time.Second})
	if got := h.s.NextDeadline(); !got.Equal(h.now.Add(10 * time.Second)) {
		t.Fatalf("next deadline %v", got)
	}
	h.advance(9 * time.Second)
	if r := h.one(&ExpireLeases{}); r.Count != 0 {
		t.Fatalf("expired %d leases early", r.Count)
	}
	h.advance(time.Second)
	if r := h.one(&ExpireLeases{}); r.Count != 1 {
		t.Fatalf("expired %d leases, want 1", r.Count)
	}
	// A lost attempt goes straight back to queued (no backoff): the job
	// did nothing wrong, its node did.
	j := h.job(ids[0])
	if j.State != StateQueued || !j.RunAt.IsZero() || j.Token != 0 || j.Node != "n1" || !j.LeaseExpiresAt.IsZero() {
		t.Fatalf("expired job %+v", j)
	}
	if a := j.Attempts[0]; a.Outcome != OutcomeLost || a.Error != "lease expired" || !a.Finished.Equal(h.now) {
		t.Fatalf("attempt %+v", a)
	}
	if len(h.s.Running("n1")) != 0 {
		t.Fatal("node still holds the expired lease")
	}
}

func TestHeartbeat(t *testing.T) {
	h := newHarness(t)
	ids := h.submit(Spec{Plugin: "p"}, Spec{Plugin: "p"})
	ls := h.one(&Claim{Node: "n1", Slots: map[string]int{"p": 2}, LeaseTTL: 10 * time.Second}).Leases
	h.one(&Cancel{ID: ids[1]})
	h.advance(8 * time.Second)
	r := h.one(&Heartbeat{Node: "n1", LeaseTTL: 10 * time.Second, Leases: []LeaseRef{
		{ID: ids[0], Token: ls[0].Token},
		{ID: ids[1], Token: ls[1].Token},
		{ID: ids[0], Token: ls[0].Token - 1},
		{ID: "nope", Token: 7},
	}})
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	want := []Abort{
		{ID: ids[1], Token: ls[1].Token, Reason: "cancelled"},
		{ID: ids[0], Token: ls[0].Token - 1, Reason: reasonStale},
		{ID: "nope", Token: 7, Reason: reasonNotFound},
	}
	if !reflect.DeepEqual(r.Abort, want) {
		t.Fatalf("aborts %+v\nwant %+v", r.Abort, want)
	}
	for _, id := range ids {
		if got := h.job(id).LeaseExpiresAt; !got.Equal(h.now.Add(10 * time.Second)) {
			t.Fatalf("lease of %s not renewed: %v", id, got)
		}
	}
	// A heartbeat from another node, with the right token, does not renew
	// the lease and tells that node to stop.
	renewed := h.job(ids[0]).LeaseExpiresAt
	h.advance(time.Second)
	r = h.one(&Heartbeat{Node: "n2", LeaseTTL: time.Hour, Leases: []LeaseRef{{ID: ids[0], Token: ls[0].Token}}})
	if want := []Abort{{ID: ids[0], Token: ls[0].Token, Reason: reasonStale}}; !reflect.DeepEqual(r.Abort, want) {
		t.Fatalf("foreign heartbeat aborts %+v, want %+v", r.Abort, want)
	}
	if got := h.job(ids[0]).LeaseExpiresAt; !got.Equal(renewed) {
		t.Fatalf("foreign heartbeat moved the lease from %v to %v", renewed, got)
	}
	// Past the original expiry, the renewed leases survive.
	h.advance(4 * time.Second)
	if r := h.one(&ExpireLeases{}); r.Count != 0 {
		t.Fatalf("renewed leases expired: %d", r.Count)
	}
	// A heartbeat without a TTL renews for DefaultLeaseTTL.
	r = h.one(&Heartbeat{Node: "n1", Leases: []LeaseRef{{ID: ids[0], Token: ls[0].Token}}})
	if len(r.Abort) != 0 {
		t.Fatalf("heartbeat without a TTL aborted %+v", r.Abort)
	}
	if got := h.job(ids[0]).LeaseExpiresAt; !got.Equal(h.now.Add(DefaultLeaseTTL)) {
		t.Fatalf("heartbeat without a TTL: lease expires %v, want now+%s", got, DefaultLeaseTTL)
	}
	// A finished job's heartbeat is aborted.
	if err := h.report("n1", ls[0], OutcomeSucceeded, "ok"); err != nil {
		t.Fatal(err)
	}
	r = h.one(&Heartbeat{Node: "n1", Leases: []LeaseRef{{ID: ids[0], Token: ls[0].Token}}})
	if len(r.Abort) != 1 || !strings.Contains(r.Abort[0].Reason, "succeeded") {
		t.Fatalf("aborts %+v", r.Abort)
	}
}

func TestFailNode(t *testing.T) {
	h := newHarness(t)
	ids := h.submit(Spec{Plugin: "p"}, Spec{Plugin: "p"}, Spec{Plugin: "p", MaxAttempts: 1}, Spec{Plugin: "p"})
	h.claim("n1", "p", 3)
	h.claim("n2", "p", 1)
	r := h.one(&FailNode{Node: "n1", Reason: "serf: member failed"})
	if r.Count != 3 {
		t.Fatalf("count %d, want 3", r.Count)
	}
	for i, want := range []State{StateQueued, StateQueued, StateFailed, StateRunning} {
		j := h.job(ids[i])
		if j.State != want {
			t.Fatalf("job %d is %s, want %s", i, j.State, want)
		}
		if i < 3 && j.Attempts[0].Outcome != OutcomeLost || i < 3 && j.Attempts[0].Error != "node failed: serf: member failed" {
			t.Fatalf("job %d attempt %+v", i, j.Attempts[0])
		}
	}
	if len(h.s.Running("n1")) != 0 || len(h.s.Running("n2")) != 1 {
		t.Fatalf("running n1 %v n2 %v", h.s.Running("n1"), h.s.Running("n2"))
	}
	if r := h.one(&FailNode{Node: "n1"}); r.Count != 0 {
		t.Fatalf("second FailNode count %d", r.Count)
	}
}

func TestRetriesAndBackoff(t *testing.T) {
	tests := []struct {
		name      string
		queue     QueueConfig
		spec      Spec
		outcomes  []Outcome
		nonRetry  bool
		wantState State
		wantBase  time.Duration
	}{
		{name: "attempts exhausted", spec: Spec{MaxAttempts: 3}, outcomes: []Outcome{OutcomeFailed, OutcomeFailed, OutcomeFailed}, wantState: StateFailed, wantBase: DefaultBackoffBase},
		{name: "retry then succeed", spec: Spec{MaxAttempts: 3}, outcomes: []Outcome{OutcomeFailed, OutcomeSucceeded}, wantState: StateSucceeded, wantBase: DefaultBackoffBase},
		{name: "queue max attempts", queue: QueueConfig{MaxAttempts: 2}, outcomes: []Outcome{OutcomeFailed, OutcomeFailed}, wantState: StateFailed, wantBase: DefaultBackoffBase},
		{name: "queue backoff base", queue: QueueConfig{BackoffBase: time.Second}, outcomes: []Outcome{OutcomeFailed}, wantState: StateScheduled, wantBase: time.Second},
		{name: "non retryable", outcomes: []Outcome{OutcomeFailed}, nonRetry: true, wantState: StateFailed},
		{name: "cancelled report", outcomes: []Outcome{OutcomeCancelled}, wantState: StateCancelled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.one(&SetQueue{Name: "q", Fields: FieldMaxAttempts | FieldBackoffBase, Config: tt.queue})
			tt.spec.Queue, tt.spec.Plugin = "q", "p"
			id := h.submit(tt.spec)[0]
			for n, o := range tt.outcomes {
				ls := h.claim("n1", "p", 1)
				if len(ls) != 1 {
					t.Fatalf("attempt %d: nothing to claim (job %+v)", n+1, h.job(id))
				}
				rep := Report{ID: id, Token: ls[0].Token, Node: "n1", Outcome: o, Error: "boom", NonRetryable: tt.nonRetry}
				if o == OutcomeSucceeded {
					rep.Error, rep.Result = "", []byte("result")
				}
				if err := h.one(&Complete{Reports: []Report{rep}}).Reports[0]; err != nil {
					t.Fatal(err)
				}
				j := h.job(id)
				if j.Attempt != n+1 || j.Attempts[n].Outcome != o || !j.Attempts[n].Finished.Equal(h.now) {
					t.Fatalf("attempt %d history %+v", n+1, j.Attempts)
				}
				if j.State == StateScheduled {
					want := h.now.Add(Backoff(id, n+1, tt.wantBase))
					if !j.RunAt.Equal(want) || j.Error != "boom" {
						t.Fatalf("retry run_at %v, want %v (error %q)", j.RunAt, want, j.Error)
					}
					h.now = j.RunAt
				}
			}
			j := h.job(id)
			if j.State != tt.wantState {
				t.Fatalf("final state %s, want %s", j.State, tt.wantState)
			}
			if j.State.Terminal() != !j.FinishedAt.IsZero() {
				t.Fatalf("finished_at %v in state %s", j.FinishedAt, j.State)
			}
			if j.State == StateSucceeded && (string(j.Result) != "result" || j.Error != "") {
				t.Fatalf("succeeded job result %q error %q", j.Result, j.Error)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	for attempt := 1; attempt <= 25; attempt++ {
		d := Backoff("01J0ABC", attempt, DefaultBackoffBase)
		a := time.Duration(attempt)
		jitter := d - a*a*a*a*time.Second - DefaultBackoffBase
		if jitter < 0 || jitter >= 10*(a+1)*time.Second || jitter%((a+1)*time.Second) != 0 {
			t.Fatalf("attempt %d: backoff %s has jitter %s", attempt, d, jitter)
		}
		if d != Backoff("01J0ABC", attempt, DefaultBackoffBase) {
			t.Fatal("backoff is not deterministic")
		}
	}
	distinct := map[time.Duration]bool{}
	for _, id := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		distinct[Backoff(id, 3, 0)] = true
	}
	if len(distinct) < 2 {
		t.Fatal("jitter does not depend on the job id")
	}
	// The cap holds for attempts whose attempt^4 passes a year (75+), for
	// the shortcut past 200, and for a base beyond the cap.
	for _, attempt := range []int{75, 100, 200, 201, 1_000_000} {
		if got := Backoff("x", attempt, DefaultBackoffBase); got != MaxBackoff {
			t.Fatalf("attempt %d backoff %s, want the %s cap", attempt, got, MaxBackoff)
		}
	}
	if got := Backoff("x", 74, DefaultBackoffBase); got >= MaxBackoff {
		t.Fatalf("attempt 74 backoff %s already at the cap", got)
	}
	for _, base := range []time.Duration{10 * MaxBackoff, math.MaxInt64} {
		if got := Backoff("x", 100, base); got != MaxBackoff {
			t.Fatalf("backoff with a base of %s is %s, want the %s cap", base, got, MaxBackoff)
		}
	}
}

// A job that goes back to queued (its lease was lost, or a user retried
// it) queues behind the jobs submitted meanwhile: it gets a new place in
// FIFO order rather than jumping the line with its old one.
func TestRequeuedJobGoesToTheBack(t *testing.T) {
	tests := []struct {
		name        string
		maxAttempts int
		requeue     func(h *harness, l Lease)
	}{
		{"lease expired", 5, func(h *harness, _ Lease) {
			h.advance(DefaultLeaseTTL)
			if r := h.one(&ExpireLeases{}); r.Count != 1 {
				h.t.Fatalf("expired %d leases, want 1", r.Count)
			}
		}},
		{"node failed", 5, func(h *harness, _ Lease) {
			if r := h.one(&FailNode{Node: "n1"}); r.Count != 1 {
				h.t.Fatalf("failed %d leases, want 1", r.Count)
			}
		}},
		{"retried after failing", 1, func(h *harness, l Lease) {
			if err := h.report("n1", l, OutcomeFailed, "boom"); err != nil {
				h.t.Fatal(err)
			}
			if r := h.one(&Retry{ID: l.Job.ID}); r.Err != nil {
				h.t.Fatal(r.Err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			first := h.submit(Spec{Plugin: "p", MaxAttempts: tt.maxAttempts})[0]
			l := onlyLease(t, h.one(&Claim{Node: "n1", Slots: map[string]int{"p": 1}}))
			later := h.submit(Spec{Plugin: "p"})[0]
			tt.requeue(h, l)
			if j := h.job(first); j.State != StateQueued {
				t.Fatalf("re-queued job is %s", j.State)
			}
			if got := leaseIDs(h.claim("n2", "p", 1)); !reflect.DeepEqual(got, []string{later}) {
				t.Fatalf("after the re-queue the first claim got %v, want %s, submitted meanwhile", got, later)
			}
			if got := leaseIDs(h.claim("n2", "p", 1)); !reflect.DeepEqual(got, []string{first}) {
				t.Fatalf("second claim got %v, want the re-queued %s", got, first)
			}
		})
	}
}

func TestUniqueKey(t *testing.T) {
	tests := []struct {
		name         string
		finish       bool          // finish the first job before resubmitting
		uniqueFor    time.Duration // of the first job
		wait         time.Duration // between the submits
		wantExisting bool
	}{
		{name: "non-terminal job dedupes", wantExisting: true},
		{name: "non-terminal dedupes past unique_for", uniqueFor: time.Second, wait: time.Hour, wantExisting: true},
		{name: "terminal job frees the key", finish: true},
		{name: "terminal within unique_for dedupes", finish: true, uniqueFor: time.Hour, wait: 59 * time.Minute, wantExisting: true},
		{name: "terminal after unique_for frees the key", finish: true, uniqueFor: time.Hour, wait: time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			first := h.submit(Spec{Plugin: "p", UniqueKey: "k", UniqueFor: tt.uniqueFor})[0]
			if tt.finish {
				ls := h.claim("n1", "p", 1)
				if err := h.report("n1", ls[0], OutcomeSucceeded, ""); err != nil {
					t.Fatal(err)
				}
			}
			h.advance(tt.wait)
			r := h.one(&Submit{IDs: []string{"second"}, Specs: []Spec{{Plugin: "p", UniqueKey: "k"}}})
			sub := r.Submitted[0]
			if sub.Err != nil || sub.Existing != tt.wantExisting {
				t.Fatalf("second submit %+v", sub)
			}
			_, created := h.s.Get("second")
			if tt.wantExisting && (sub.ID != first || created) || !tt.wantExisting && (sub.ID != "second" || !created) {
				t.Fatalf("second submit %+v, created %v", sub, created)
			}
		})
	}

	t.Run("same key twice in one submit", func(t *testing.T) {
		h := newHarness(t)
		r := h.one(&Submit{IDs: []string{"a", "b"}, Specs: []Spec{{Plugin: "p", UniqueKey: "k"}, {Plugin: "p", UniqueKey: "k"}}})
		want := []Submitted{{ID: "a"}, {ID: "a", Existing: true}}
		if !reflect.DeepEqual(r.Submitted, want) {
			t.Fatalf("submitted %+v", r.Submitted)
		}
		if _, ok := h.s.Get("b"); ok {
			t.Fatal("duplicate created a job")
		}
	})
}

func TestCancel(t *testing.T) {
	h := newHarness(t)
	ids := h.submit(Spec{Plugin: "p"}, Spec{Plugin: "p", RunAt: h.now.Add(time.Hour)}, Spec{Plugin: "q"})
	ls := h.claim("n1", "q", 1)

	for _, id := range ids[:2] {
		r := h.one(&Cancel{ID: id})
		if r.Err != nil || r.Job.State != StateCancelled || !r.Job.FinishedAt.Equal(h.now) || r.Job != h.job(id) {
			t.Fatalf("cancel waiting job: %+v", r)
		}
	}
	if got := h.claim("n1", "p", 5); len(got) != 0 {
		t.Fatalf("cancelled job claimed: %v", leaseIDs(got))
	}

	r := h.one(&Cancel{ID: ids[2]})
	if r.Err != nil || r.Job.State != StateRunning || !r.Job.CancelRequested {
		t.Fatalf("cancel running job: %+v", r)
	}
	// The node's failure report after the abort ends the job cancelled.
	if err := h.report("n1", ls[0], OutcomeFailed, "context canceled"); err != nil {
		t.Fatal(err)
	}
	if j := h.job(ids[2]); j.State != StateCancelled || j.CancelRequested {
		t.Fatalf("cancelled running job %+v", j)
	}

	if r := h.one(&Cancel{ID: ids[0]}); !errors.Is(r.Err, ErrTerminal) {
		t.Fatalf("cancel terminal: %v", r.Err)
	}
	if r := h.one(&Cancel{ID: "nope"}); !errors.Is(r.Err, ErrNotFound) {
		t.Fatalf("cancel unknown: %v", r.Err)
	}
}

func TestCancelRequestedLeaseExpiry(t *testing.T) {
	h := newHarness(t)
	id := h.submit(Spec{Plugin: "p"})[0]
	h.claim("n1", "p", 1)
	h.one(&Cancel{ID: id})
	h.advance(DefaultLeaseTTL)
	h.one(&ExpireLeases{})
	if j := h.job(id); j.State != StateCancelled {
		t.Fatalf("cancel-requested job with a lost lease is %s", j.State)
	}
}

func TestRetry(t *testing.T) {
	h := newHarness(t)
	ids := h.submit(Spec{Plugin: "p", MaxAttempts: 1}, Spec{Plugin: "p"})
	ls := h.claim("n1", "p", 2)
	if err := h.report("n1", ls[0], OutcomeFailed, "boom"); err != nil {
		t.Fatal(err)
	}
	if err := h.report("n1", ls[1], OutcomeSucceeded, "ok"); err != nil {
		t.Fatal(err)
	}
	if h.job(ids[0]).State != StateFailed {
		t.Fatal("job with one attempt did not fail")
	}
	r := h.one(&Retry{ID: ids[0]})
	if r.Err != nil || r.Job.State != StateQueued || r.Job.MaxAttempts != 2 || r.Job.Attempt != 1 || r.Job.Error != "" || !r.Job.FinishedAt.IsZero() || len(r.Job.Attempts) != 1 {
		t.Fatalf("retry %+v", r)
	}
	ls = h.claim("n1", "p", 1)
	if len(ls) != 1 || ls[0].Job.Attempt != 2 {
		t.Fatalf("retried job claim %+v", ls)
	}
	for _, id := range []string{ids[0], ids[1]} {
		if r := h.one(&Retry{ID: id}); !errors.Is(r.Err, ErrNotRetryable) {
			t.Fatalf("retry of %s: %v", h.job(id).State, r.Err)
		}
	}
	if r := h.one(&Retry{ID: "nope"}); !errors.Is(r.Err, ErrNotFound) {
		t.Fatalf("retry unknown: %v", r.Err)
	}
}

func TestPurge(t *testing.T) {
	h := newHarness(t)
	h.one(&SetQueue{Name: "short", Fields: FieldRetention, Config: QueueConfig{Retention: time.Hour}})
	ids := h.submit(Spec{Queue: "short", Plugin: "p", UniqueKey: "k"}, Spec{Queue: "short", Plugin: "p"}, Spec{Plugin: "p"}, Spec{Queue: "short", Plugin: "p"})
	for _, id := range ids[:3] {
		h.one(&Cancel{ID: id})
	}
	if got := h.s.NextDeadline(); !got.Equal(h.now.Add(time.Hour)) {
		t.Fatalf("next deadline %v", got)
	}
	h.advance(time.Hour - time.Second)
	if r := h.one(&Purge{}); r.Count != 0 {
		t.Fatalf("purged %d early", r.Count)
	}
	h.advance(time.Second)
	if r := h.one(&Purge{Limit: 1}); r.Count != 1 {
		t.Fatalf("limit 1 purged %d", r.Count)
	}
	if r := h.one(&Purge{}); r.Count != 1 {
		t.Fatalf("second purge %d", r.Count)
	}
	for i, want := range []bool{false, false, true, true} {
		if _, ok := h.s.Get(ids[i]); ok != want {
			t.Fatalf("job %d present=%v, want %v", i, ok, want)
		}
	}
	// The purged holder freed its unique key.
	if sub := h.one(&Submit{IDs: []string{"new"}, Specs: []Spec{{Plugin: "p", UniqueKey: "k"}}}).Submitted[0]; sub.Existing || sub.ID != "new" {
		t.Fatalf("submit after purge %+v", sub)
	}
	h.advance(DefaultRetention)
	if r := h.one(&Purge{}); r.Count != 1 {
		t.Fatalf("default retention purge %d", r.Count)
	}
	if r := h.one(&Purge{Limit: -1}); !errors.Is(r.Err, ErrBadCommand) {
		t.Fatalf("negative limit: %v", r.Err)
	}
	// Limit 0 takes the default batch: every due job here.
	more := h.submit(Spec{Plugin: "p"}, Spec{Plugin: "p"}, Spec{Plugin: "p"})
	for _, id := range more {
		h.one(&Cancel{ID: id})
	}
	h.advance(DefaultRetention)
	if r := h.one(&Purge{}); r.Count != len(more) {
		t.Fatalf("purge with limit 0 deleted %d of %d due jobs", r.Count, len(more))
	}
}

func TestConstraints(t *testing.T) {
	h := newHarness(t)
	ids := h.submit(Spec{Plugin: "p", Constraints: map[string]string{"zone": "a", "gpu": "yes"}}, Spec{Plugin: "p"})
	got := h.one(&Claim{Node: "n1", Tags: map[string]string{"zone": "b", "gpu": "yes"}, Slots: map[string]int{"p": 2}}).Leases
	if !reflect.DeepEqual(leaseIDs(got), ids[1:]) {
		t.Fatalf("mismatched node claimed %v (a constrained job must not block others)", leaseIDs(got))
	}
	// A node without the tag at all does not satisfy gpu=yes either.
	got = h.one(&Claim{Node: "n3", Tags: map[string]string{"zone": "a"}, Slots: map[string]int{"p": 2}}).Leases
	if len(got) != 0 {
		t.Fatalf("node missing the gpu tag claimed %v", leaseIDs(got))
	}
	got = h.one(&Claim{Node: "n2", Tags: map[string]string{"zone": "a", "gpu": "yes", "x": "y"}, Slots: map[string]int{"p": 2}}).Leases
	if !reflect.DeepEqual(leaseIDs(got), ids[:1]) {
		t.Fatalf("matching node claimed %v", leaseIDs(got))
	}
}

func TestSubmitDefaults(t *testing.T) {
	h := newHarness(t)
	h.one(&SetQueue{Name: "q", Fields: FieldMaxAttempts, Config: QueueConfig{MaxAttempts: 7}})
	ids := h.submit(Spec{Plugin: "p"}, Spec{Queue: "q", Plugin: "p", Timeout: time.Minute})
	j := h.job(ids[0])
	if j.Queue != DefaultQueue || j.MaxAttempts != DefaultMaxAttempts || j.Timeout != DefaultTimeout || j.State != StateQueued || !j.CreatedAt.Equal(t0) || j.Index != h.index {
		t.Fatalf("defaults %+v", j)
	}
	if j := h.job(ids[1]); j.MaxAttempts != 7 || j.Timeout != time.Minute {
		t.Fatalf("queue defaults %+v", j)
	}
	qs := h.s.Queues()
	if len(qs) != 2 || qs[0].Name != "default" || qs[0].Counts[StateQueued] != 1 || qs[1].Name != "q" {
		t.Fatalf("queues %+v", qs)
	}
}

func TestBadSpecs(t *testing.T) {
	tests := []struct {
		name string
		spec Spec
		id   string
	}{
		{name: "no plugin", spec: Spec{}},
		{name: "bad queue name", spec: Spec{Plugin: "p", Queue: "no spaces"}},
		{name: "long queue name", spec: Spec{Plugin: "p", Queue: strings.Repeat("q", 129)}},
		{name: "priority too high", spec: Spec{Plugin: "p", Priority: MaxPriority + 1}},
		{name: "priority too low", spec: Spec{Plugin: "p", Priority: -MaxPriority - 1}},
		{name: "negative attempts", spec: Spec{Plugin: "p", MaxAttempts: -1}},
		{name: "negative timeout", spec: Spec{Plugin: "p", Timeout: -time.Second}},
		{name: "negative unique_for", spec: Spec{Plugin: "p", UniqueFor: -time.Second}},
		{name: "empty constraint key", spec: Spec{Plugin: "p", Constraints: map[string]string{"": "x"}}},
		{name: "missing id", spec: Spec{Plugin: "p"}, id: "-"},
		{name: "existing id", spec: Spec{Plugin: "p"}, id: "taken"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.one(&Submit{IDs: []string{"taken"}, Specs: []Spec{{Plugin: "p"}}})
			before := dump(h.s)
			id := "bad"
			switch tt.id {
			case "-":
				id = ""
			case "taken":
				id = "taken"
			}
			r := h.one(&Submit{IDs: []string{id}, Specs: []Spec{tt.spec}})
			if r.Err != nil || !errors.Is(r.Submitted[0].Err, ErrBadSpec) {
				t.Fatalf("result %+v", r)
			}
			assertSameState(t, before, dump(h.s))

			// A valid sibling still lands.
			r = h.one(&Submit{IDs: []string{id, "good"}, Specs: []Spec{tt.spec, {Plugin: "p"}}})
			if !errors.Is(r.Submitted[0].Err, ErrBadSpec) || r.Submitted[1] != (Submitted{ID: "good"}) {
				t.Fatalf("mixed submit %+v", r.Submitted)
			}
		})
	}
	h := newHarness(t)
	if r := h.one(&Submit{IDs: []string{"a"}, Specs: []Spec{{Plugin: "p"}, {Plugin: "p"}}}); !errors.Is(r.Err, ErrBadCommand) || len(h.s.List(Filter{})) != 0 {
		t.Fatalf("ids/specs mismatch: %+v", r)
	}
}

// The limits are inclusive: a spec right at a bound is accepted.
func TestSpecsAtTheBounds(t *testing.T) {
	h := newHarness(t)
	ids := h.submit(
		Spec{Plugin: "p", Priority: MaxPriority},
		Spec{Plugin: "p", Priority: -MaxPriority},
		Spec{Plugin: "p", Queue: strings.Repeat("q", MaxQueueName)},
	)
	if got := leaseIDs(h.claim("n1", "p", 3)); !reflect.DeepEqual(got, []string{ids[0], ids[2], ids[1]}) {
		t.Fatalf("claim order %v, want highest priority first, lowest last", got)
	}
}

func TestListAndCounts(t *testing.T) {
	h := newHarness(t)
	a := h.submit(Spec{Plugin: "p"}, Spec{Queue: "q", Plugin: "p"})
	h.advance(time.Second)
	b := h.submit(Spec{Plugin: "p"})
	h.one(&Cancel{ID: a[0]})
	got := h.s.List(Filter{})
	if ids := []string{got[0].ID, got[1].ID, got[2].ID}; !reflect.DeepEqual(ids, []string{b[0], a[1], a[0]}) {
		t.Fatalf("list order %v", ids)
	}
	if got := h.s.List(Filter{Queue: "default", State: StateQueued}); len(got) != 1 || got[0].ID != b[0] {
		t.Fatalf("filtered list %v", got)
	}
	if got := h.s.List(Filter{Limit: 1}); len(got) != 1 || got[0].ID != b[0] {
		t.Fatalf("limited list %v", got)
	}
	if c := h.s.Counts(); c[StateQueued] != 2 || c[StateCancelled] != 1 {
		t.Fatalf("counts %v", c)
	}
	h.submit(Spec{Plugin: "other"})
	if got := h.s.QueuedByPlugin(); !reflect.DeepEqual(got, map[string]int{"p": 2, "other": 1}) {
		t.Fatalf("queued by plugin %v", got)
	}
}

func TestWatch(t *testing.T) {
	h := newHarness(t)
	idx, ch := h.s.Watch()
	select {
	case <-ch:
		t.Fatal("watch fired without a change")
	default:
	}
	h.submit(Spec{Plugin: "p"})
	select {
	case <-ch:
	default:
		t.Fatal("watch did not fire on apply")
	}
	idx2, ch2 := h.s.Watch()
	if idx2 != idx+1 || ch2 == ch {
		t.Fatalf("watch index %d -> %d", idx, idx2)
	}
	if err := h.s.Restore(strings.NewReader(string(snapshotBytes(t, h.s)))); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch2:
	default:
		t.Fatal("watch did not fire on restore")
	}
}
