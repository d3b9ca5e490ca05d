package telemetry

import (
	"testing"
	"time"

	"github.com/corral-dev/corral/queue"
)

// sum adds up every series of family name (counter values or histogram
// counts) and reports how many series it has.
func sum(t *testing.T, m *Metrics, name string) (float64, int) {
	t.Helper()
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var v float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, s := range mf.GetMetric() {
			v += s.GetCounter().GetValue() + float64(s.GetHistogram().GetSampleCount())
		}
		return v, len(mf.GetMetric())
	}
	return 0, 0
}

// TestObserveCountsOutcomes: each kind of FSM transition lands in its
// family and nowhere else.
func TestObserveCountsOutcomes(t *testing.T) {
	m, err := New(Config{Node: "n1", Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	tr := func(from, to queue.State, o queue.Outcome) queue.Transition {
		return queue.Transition{Queue: "q", Plugin: "p", From: from, To: to, Outcome: o, Wait: time.Second, Age: 2 * time.Second}
	}
	for _, x := range []queue.Transition{
		tr(queue.StateInvalid, queue.StateQueued, 0),                                  // submit
		tr(queue.StateQueued, queue.StateRunning, 0),                                  // start
		tr(queue.StateRunning, queue.StateQueued, queue.OutcomeLost),                  // lost, retried
		tr(queue.StateQueued, queue.StateRunning, 0),                                  // start
		tr(queue.StateRunning, queue.StateScheduled, queue.OutcomeFailed),             // retried with backoff
		tr(queue.StateScheduled, queue.StateQueued, 0),                                // due: not a retry
		tr(queue.StateQueued, queue.StateRunning, 0),                                  // start
		tr(queue.StateRunning, queue.StateFailed, queue.OutcomeFailed),                // dead set
		tr(queue.StateFailed, queue.StateQueued, 0),                                   // manual retry
		tr(queue.StateQueued, queue.StateRunning, 0),                                  // start
		tr(queue.StateRunning, queue.StateSucceeded, queue.OutcomeSucceeded),          // done
		tr(queue.StateInvalid, queue.StateScheduled, 0),                               // submit (delayed)
		tr(queue.StateScheduled, queue.StateCancelled, 0),                             // cancel
		{Queue: "q", Plugin: "p", From: queue.StateSucceeded, To: queue.StateInvalid}, // purge
	} {
		m.Observe(x)
	}
	for name, want := range map[string]float64{
		"corral_jobs_submitted_total": 2, "corral_jobs_succeeded_total": 1, "corral_jobs_failed_total": 1,
		"corral_jobs_cancelled_total": 1, "corral_jobs_retried_total": 3, "corral_jobs_lost_total": 1,
		"corral_jobs_purged_total": 1, "corral_job_queue_wait_seconds": 4, "corral_job_end_to_end_seconds": 3,
	} {
		if got, _ := sum(t, m, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if _, n := sum(t, m, "corral_job_end_to_end_seconds"); n != 3 {
		t.Errorf("end-to-end series (succeeded, failed, cancelled): %d, want 3", n)
	}
}
