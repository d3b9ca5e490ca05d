package queue

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/corral-dev/corral/internal/binenc"
)

func (h *harness) setRate(queue string, r Rate) {
	h.t.Helper()
	if res := h.one(&SetQueueRate{Name: queue, Rate: r}); res.Err != nil {
		h.t.Fatalf("set rate: %v", res.Err)
	}
}

// submitN submits n jobs of plugin p to queue q.
func (h *harness) submitN(q, p string, n int) {
	h.t.Helper()
	specs := make([]Spec, n)
	for i := range specs {
		specs[i] = Spec{Queue: q, Plugin: p}
	}
	h.submit(specs...)
}

func TestParseRate(t *testing.T) {
	good := map[string]Rate{
		"100/s": {Count: 100, Per: time.Second}, "5/m": {Count: 5, Per: time.Minute},
		"1/h": {Count: 1, Per: time.Hour}, "7/min": {Count: 7, Per: time.Minute}, "0": {}, "": {}, "none": {},
	}
	for in, want := range good {
		got, err := ParseRate(in)
		if err != nil || got != want {
			t.Errorf("ParseRate(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"100", "100/d", "-1/s", "0/s", "x/s", "2000000/s", "1.5/s", "/s"} {
		_, err := ParseRate(in)
		if !errors.Is(err, ErrBadRate) || !strings.Contains(err.Error(), "N/s, N/m or N/h") {
			t.Errorf("ParseRate(%q): got %v, want a one-line ErrBadRate naming the forms", in, err)
		}
	}
	if s := (Rate{Count: 100, Per: time.Second, Burst: 20}).String(); s != "100/s" {
		t.Errorf("String = %q", s)
	}
}

// TestRateBadCommandsChangeNothing: invalid limits are rejected whole.
func TestRateBadCommandsChangeNothing(t *testing.T) {
	h := newHarness(t)
	h.submitN("q", "p", 3)
	for _, c := range []*SetQueueRate{
		{Name: "q", Rate: Rate{Count: 5, Per: time.Second}},                  // no burst
		{Name: "q", Rate: Rate{Count: 5, Per: 2 * time.Second, Burst: 1}},    // odd period
		{Name: "q", Rate: Rate{Count: 0, Per: time.Second, Burst: 1}},        // no count
		{Name: "q", Rate: Rate{Count: 5, Per: time.Second, Burst: 1 << 40}},  // burst too big
		{Name: "q", Rate: Rate{Count: 1 << 40, Per: time.Second, Burst: 1}},  // count too big
		{Name: "bad name", Rate: Rate{Count: 5, Per: time.Second, Burst: 1}}, // queue name
	} {
		want := ErrBadRate
		if c.Name == "bad name" {
			want = ErrBadQueue
		}
		h.assertRejected(c, want)
	}
}

// TestRateBucketRefillsAndCaps: a full bucket lets burst jobs go at once,
// then claims stop at zero tokens and resume exactly when a token has
// refilled; a long idle time refills only up to the burst.
func TestRateBucketRefillsAndCaps(t *testing.T) {
	h := newHarness(t)
	h.setRate("q", Rate{Count: 5, Per: time.Second, Burst: 2})
	h.submitN("q", "p", 20)
	if got := len(h.claim("n1", "p", 10)); got != 2 {
		t.Fatalf("first claim got %d jobs, want the burst of 2", got)
	}
	if got := len(h.claim("n1", "p", 10)); got != 0 {
		t.Fatalf("claim with an empty bucket got %d jobs", got)
	}
	h.advance(199 * time.Millisecond)
	if got := len(h.claim("n1", "p", 10)); got != 0 {
		t.Fatalf("claim 199ms later got %d jobs, want 0 (one token takes 200ms at 5/s)", got)
	}
	h.advance(time.Millisecond)
	if got := len(h.claim("n1", "p", 10)); got != 1 {
		t.Fatalf("claim 200ms later got %d jobs, want 1", got)
	}
	h.advance(time.Hour)
	if got := len(h.claim("n1", "p", 10)); got != 2 {
		t.Fatalf("claim after an hour idle got %d jobs, want the burst of 2", got)
	}
	// Another queue without a limit is not held back.
	h.submitN("free", "p", 3)
	if got := len(h.claim("n1", "p", 10)); got != 3 {
		t.Fatalf("claim got %d jobs, want the 3 of the unlimited queue", got)
	}
}

// TestRateFixedPointIsExact: 3/s does not divide a second in whole
// nanoseconds; tokens come at exactly ceil(k*1e9/3) ns.
func TestRateFixedPointIsExact(t *testing.T) {
	h := newHarness(t)
	h.setRate("q", Rate{Count: 3, Per: time.Second, Burst: 1})
	h.submitN("q", "p", 5)
	if got := len(h.claim("n1", "p", 5)); got != 1 {
		t.Fatalf("got %d, want 1", got)
	}
	h.advance(333333333 * time.Nanosecond)
	if got := len(h.claim("n1", "p", 5)); got != 0 {
		t.Fatalf("at 333333333ns got %d, want 0", got)
	}
	next := h.s.Queues()[0].Rate.NextToken(h.now)
	if want := h.now.Add(time.Nanosecond); !next.Equal(want) {
		t.Fatalf("next token at %s, want %s", next, want)
	}
	h.advance(time.Nanosecond)
	if got := len(h.claim("n1", "p", 5)); got != 1 {
		t.Fatalf("at 333333334ns got %d, want 1", got)
	}
}

// TestRateChangeKeepsWholeTokens: changing a limit keeps the bucket's
// whole tokens, capped at the new burst; the same limit again is a no-op;
// removing it lets everything go.
func TestRateChangeKeepsWholeTokens(t *testing.T) {
	h := newHarness(t)
	h.setRate("q", Rate{Count: 1, Per: time.Minute, Burst: 10})
	h.submitN("q", "p", 30)
	h.claim("n1", "p", 4) // 6 left
	h.setRate("q", Rate{Count: 1, Per: time.Minute, Burst: 10})
	h.setRate("q", Rate{Count: 1, Per: time.Hour, Burst: 5})
	if got := len(h.claim("n1", "p", 30)); got != 5 {
		t.Fatalf("got %d, want 5 (6 tokens capped at the new burst)", got)
	}
	h.setRate("q", Rate{})
	if h.s.Queues()[0].Rate != nil {
		t.Fatal("the limit is still listed")
	}
	if got := len(h.claim("n1", "p", 30)); got != 21 {
		t.Fatalf("got %d, want all 21 left", got)
	}
}

// TestClaimableKnowsRateLimits: the dry run answers like the claim, and
// names the time a token comes for the leader to wake up at.
func TestClaimableKnowsRateLimits(t *testing.T) {
	h := newHarness(t)
	h.setRate("q", Rate{Count: 5, Per: time.Second, Burst: 1})
	slots := map[string]int{"p": 4}
	if ok, wake := h.s.ClaimableAt(h.now, nil, slots); ok || !wake.IsZero() {
		t.Fatalf("empty queue: claimable %v, wake %v", ok, wake)
	}
	h.submitN("q", "p", 3)
	h.claim("n1", "p", 4)
	ok, wake := h.s.ClaimableAt(h.now, nil, slots)
	if ok || !wake.Equal(h.now.Add(200*time.Millisecond)) {
		t.Fatalf("claimable %v, wake %v; want false, %v", ok, wake, h.now.Add(200*time.Millisecond))
	}
	if h.s.Claimable(nil, slots) {
		t.Fatal("Claimable (at the last entry's time) says yes with an empty bucket")
	}
	if ok, _ := h.s.ClaimableAt(wake, nil, slots); !ok {
		t.Fatal("not claimable when the token came")
	}
	// A job the node cannot take for its constraints sets no wake-up.
	h2 := newHarness(t)
	h2.setRate("q", Rate{Count: 5, Per: time.Second, Burst: 1})
	h2.submit(Spec{Queue: "q", Plugin: "p"}, Spec{Queue: "q", Plugin: "p", Constraints: map[string]string{"gpu": "yes"}})
	h2.claim("n1", "p", 4)
	if ok, wake := h2.s.ClaimableAt(h2.now.Add(time.Second), nil, slots); ok || !wake.IsZero() {
		t.Fatalf("unmatched job: claimable %v, wake %v", ok, wake)
	}
	// Over several limited queues the wake-up is the earliest token of a
	// queue holding a job the node can take (not queue a's, whose only
	// job needs a gpu).
	h3 := newHarness(t)
	h3.setRate("a", Rate{Count: 10, Per: time.Second, Burst: 1})
	h3.setRate("b", Rate{Count: 2, Per: time.Second, Burst: 1})
	h3.setRate("c", Rate{Count: 5, Per: time.Second, Burst: 1})
	h3.submit(Spec{Queue: "a", Plugin: "p"}, Spec{Queue: "a", Plugin: "p", Constraints: map[string]string{"gpu": "yes"}})
	h3.submitN("b", "p", 2)
	h3.submitN("c", "p", 2)
	if n := len(h3.claim("n1", "p", 10)); n != 3 {
		t.Fatalf("claimed %d jobs, want one per queue", n)
	}
	for i := 0; i < 10; i++ { // every map order
		if ok, wake := h3.s.ClaimableAt(h3.now, nil, slots); ok || !wake.Equal(h3.now.Add(200*time.Millisecond)) {
			t.Fatalf("three queues: claimable %v, wake %v; want false, %v", ok, wake, h3.now.Add(200*time.Millisecond))
		}
	}
	// A paused queue sets no wake-up either.
	h.one(&SetQueue{Name: "q", Fields: FieldPaused, Config: QueueConfig{Paused: true}})
	if ok, wake := h.s.ClaimableAt(h.now, nil, slots); ok || !wake.IsZero() {
		t.Fatalf("paused: claimable %v, wake %v", ok, wake)
	}
}

// TestRateDeterministicAndSnapshotted: the same entries give the same
// buckets on two stores, and a store restored from a snapshot mid-way
// keeps the bucket state: later claims grant the same jobs everywhere.
func TestRateDeterministicAndSnapshotted(t *testing.T) {
	a, b := newHarness(t), newHarness(t)
	var restored *Store
	step := func(f func(h *harness)) {
		f(a)
		f(b)
	}
	step(func(h *harness) {
		h.setRate("q", Rate{Count: 7, Per: time.Second, Burst: 3})
		h.submitN("q", "p", 40)
	})
	var claims [][]string
	for i := 0; i < 30; i++ {
		var la, lb []Lease
		step(func(h *harness) {
			h.advance(time.Duration(37+i*11) * time.Millisecond)
			l := h.claim("n1", "p", 2)
			if h == a {
				la = l
			} else {
				lb = l
			}
		})
		if !reflect.DeepEqual(leaseIDs(la), leaseIDs(lb)) {
			t.Fatalf("step %d: stores granted %v and %v", i, leaseIDs(la), leaseIDs(lb))
		}
		claims = append(claims, leaseIDs(la))
		if i == 10 {
			snap := snapshotBytes(t, a.s)
			restored = New()
			if err := restored.Restore(bytes.NewReader(snap)); err != nil {
				t.Fatal(err)
			}
			if r := restored.Queues()[0].Rate; r == nil || r.Tokens(a.now) != a.s.Queues()[0].Rate.Tokens(a.now) {
				t.Fatalf("restored bucket %+v, want %+v", r, a.s.Queues()[0].Rate)
			}
			b.s = restored
		}
	}
	assertSameState(t, dump(a.s), dump(b.s))
	granted := 0
	for _, c := range claims {
		granted += len(c)
	}
	// 3 at once, then 7/s over the ~7.6s the steps span.
	elapsed := a.now.Sub(t0)
	if max := 3 + int(elapsed*7/time.Second); granted > max || granted < 3 {
		t.Fatalf("granted %d jobs in %s, want at most %d", granted, elapsed, max)
	}
}

// TestRateSnapshotSectionRejectsBadBuckets: a corrupt section fails the
// restore rather than diverging.
func TestRateSnapshotSectionRejectsBadBuckets(t *testing.T) {
	st := newState()
	rec := appendRate(binenc.AppendString([]byte{1}, "q"), Rate{Count: 5, Per: time.Second, Burst: 2})
	rec = append(rec, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40, 0) // units way over the cap
	d := newDecoder(rec, nil, false)
	restoreRates(st, &d)
	if d.Err() == nil {
		t.Fatal("a bucket over its capacity restored")
	}
}
