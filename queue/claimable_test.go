package queue

import (
	"testing"
	"time"
)

// TestClaimableIsADryRunOfClaim: Claimable answers true exactly when a
// Claim with the same tags and slots would lease a job, and changes
// nothing itself. Each case is checked against a real Claim.
func TestClaimableIsADryRunOfClaim(t *testing.T) {
	gpu := map[string]string{"gpu": "yes"}
	cases := []struct {
		name  string
		setup func(h *harness)
		tags  map[string]string
		slots map[string]int
		want  bool
	}{
		{"queued job", func(h *harness) { h.submit(Spec{Plugin: "p"}) }, nil, map[string]int{"p": 1}, true},
		{"no slot for its plugin", func(h *harness) { h.submit(Spec{Plugin: "p"}) }, nil, map[string]int{"other": 3, "p": 0}, false},
		{"constraint not met (tag missing)", func(h *harness) {
			h.submit(Spec{Plugin: "p", Constraints: gpu})
		}, nil, map[string]int{"p": 1}, false},
		{"constraint not met (tag differs)", func(h *harness) {
			h.submit(Spec{Plugin: "p", Constraints: gpu})
		}, map[string]string{"gpu": "no"}, map[string]int{"p": 1}, false},
		{"constraint met", func(h *harness) {
			h.submit(Spec{Plugin: "p", Constraints: gpu})
		}, gpu, map[string]int{"p": 1}, true},
		{"paused queue", func(h *harness) {
			h.submit(Spec{Queue: "q", Plugin: "p"})
			h.one(&SetQueue{Name: "q", Fields: FieldPaused, Config: QueueConfig{Paused: true}})
		}, nil, map[string]int{"p": 1}, false},
		{"queue at its concurrency cap", func(h *harness) {
			h.one(&SetQueue{Name: "q", Fields: FieldConcurrency, Config: QueueConfig{Concurrency: 1}})
			h.submit(Spec{Queue: "q", Plugin: "p"}, Spec{Queue: "q", Plugin: "p"})
			h.one(&Claim{Node: "n1", Slots: map[string]int{"p": 5}})
		}, nil, map[string]int{"p": 1}, false},
		{"scheduled, not due", func(h *harness) {
			h.submit(Spec{Plugin: "p", RunAt: h.now.Add(time.Hour)})
		}, nil, map[string]int{"p": 1}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			tc.setup(h)
			before := h.s.Index()
			if got := h.s.Claimable(tc.tags, tc.slots); got != tc.want {
				t.Fatalf("Claimable = %v, want %v", got, tc.want)
			}
			if h.s.Index() != before {
				t.Fatal("Claimable changed the store")
			}
			res := h.one(&Claim{Node: "n2", Tags: tc.tags, Slots: tc.slots})
			if got := len(res.Leases) > 0; got != tc.want {
				t.Fatalf("a real Claim leased %d jobs; Claimable said %v", len(res.Leases), tc.want)
			}
		})
	}
}

// TestLeaseEventsCountOutsideEnds: the lease-event number moves with every
// command that can end or cancel a running lease from outside, and only
// with those, so a lease holder can skip re-checking its leases.
func TestLeaseEventsCountOutsideEnds(t *testing.T) {
	h := newHarness(t)
	ids := h.submit(Spec{Plugin: "p"}, Spec{Plugin: "p"})
	l := h.claim("n1", "p", 2)
	if err := h.report("n1", l[0], OutcomeSucceeded, ""); err != nil {
		t.Fatal(err)
	}
	if n := h.s.LeaseEvents(); n != 0 {
		t.Fatalf("submit, claim and report moved lease events to %d", n)
	}
	for i, c := range []Command{&Cancel{ID: ids[1]}, &FailNode{Node: "n1"}, &ExpireLeases{}, &BulkCancel{}} {
		h.one(c)
		if n := h.s.LeaseEvents(); n != uint64(i+1) {
			t.Fatalf("after %T lease events = %d, want %d", c, n, i+1)
		}
	}
	h.one(&BulkRetry{})
	if n := h.s.LeaseEvents(); n != 4 {
		t.Fatalf("a bulk retry moved lease events to %d", n)
	}
}
