package queue

import (
	"errors"
	"testing"
	"time"
)

// A worker that lost its lease must not be able to finish the job: its late
// report is fenced off by the token, and the new owner's report wins.
func TestStaleFencingToken(t *testing.T) {
	h := newHarness(t)
	id := h.submit(Spec{Plugin: "p"})[0]
	first := onlyLease(t, h.one(&Claim{Node: "n1", Slots: map[string]int{"p": 1}, LeaseTTL: 10 * time.Second}))

	h.advance(10 * time.Second)
	if r := h.one(&ExpireLeases{}); r.Count != 1 {
		t.Fatalf("expired %d", r.Count)
	}
	// While the job waits, no report can finish it, not even one whose
	// token and node match what the queued job still records.
	waiting := h.job(id)
	for _, early := range []Report{
		{ID: id, Token: waiting.Token, Node: waiting.Node, Outcome: OutcomeSucceeded, Result: []byte("early")},
		{ID: id, Token: first.Token, Node: "n1", Outcome: OutcomeSucceeded, Result: []byte("early")},
	} {
		if err := h.completeOne(early); !errors.Is(err, ErrStaleToken) {
			t.Fatalf("report %+v for a queued job: err %v", early, err)
		}
	}
	if j := h.job(id); j.State != StateQueued {
		t.Fatalf("a report changed the queued job to %s", j.State)
	}
	// A lost attempt is re-queued at once: the new claim needs no wait.
	second := onlyLease(t, h.one(&Claim{Node: "n1", Slots: map[string]int{"p": 1}}))
	if second.Token <= first.Token || second.Job.Attempt != 2 {
		t.Fatalf("second lease %+v after %+v", second, first)
	}

	before := dump(h.s)
	for _, late := range []Report{
		{ID: id, Token: first.Token, Node: "n1", Outcome: OutcomeSucceeded, Result: []byte("late")},
		{ID: id, Token: first.Token, Node: "n1", Outcome: OutcomeFailed, Error: "late", NonRetryable: true},
		{ID: id, Token: second.Token, Node: "n2", Outcome: OutcomeSucceeded}, // right token, wrong node
	} {
		if err := h.completeOne(late); !errors.Is(err, ErrStaleToken) {
			t.Fatalf("late report %+v: err %v", late, err)
		}
	}
	if r := h.one(&Heartbeat{Node: "n1", Leases: []LeaseRef{{ID: id, Token: first.Token}}}); len(r.Abort) != 1 || r.Abort[0].Reason != reasonStale {
		t.Fatalf("stale heartbeat not aborted: %+v", r)
	}
	assertSameState(t, before, dump(h.s))

	if err := h.report("n1", second, OutcomeSucceeded, "fresh"); err != nil {
		t.Fatalf("current report: %v", err)
	}
	j := h.job(id)
	if j.State != StateSucceeded || string(j.Result) != "fresh" {
		t.Fatalf("job %+v", j)
	}
	// Once finished, even the current token is stale.
	if err := h.report("n1", second, OutcomeFailed, "again"); !errors.Is(err, ErrStaleToken) {
		t.Fatalf("report after finish: %v", err)
	}
	if err := h.completeOne(Report{ID: "nope", Outcome: OutcomeSucceeded}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("report for unknown job: %v", err)
	}
}

// onlyLease returns the one lease a claim granted, failing the test (not
// panicking) when it granted none or several.
func onlyLease(t *testing.T, r Result) Lease {
	t.Helper()
	if r.Err != nil || len(r.Leases) != 1 {
		t.Fatalf("claim granted %d leases (err %v), want 1", len(r.Leases), r.Err)
	}
	return r.Leases[0]
}
