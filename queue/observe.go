package queue

import "time"

// Transition is one job state change applied to the store, reported to the
// store's Observer for metrics. Every node applies the same entries, so
// every node observes the same transitions.
type Transition struct {
	// Queue and Plugin are the job's queue and plugin.
	Queue, Plugin string
	// From is the state before the change; StateInvalid for a submit.
	From State
	// To is the state after the change; StateInvalid for a purge.
	To State
	// Outcome is the outcome of the attempt that this change ended
	// (OutcomeInvalid when no attempt ended).
	Outcome Outcome
	// Wait, on a start (To == StateRunning), is how long the job was due
	// before it was claimed: since the later of its creation, its run_at
	// and the end of its previous attempt, by the entries' leader-stamped
	// times.
	Wait time.Duration
	// Age, on a change into a terminal state, is the time from the job's
	// creation to now (end-to-end latency).
	Age time.Duration
}

// Observer receives transitions. It is called on the FSM goroutine with
// the store locked: it must be fast and must not call back into the store.
type Observer func(Transition)

// SetObserver installs o (nil removes it). Call it before raft starts
// applying; it is not synchronised with Apply beyond the store's lock.
func (s *Store) SetObserver(o Observer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.observer = o
	s.observer = o
}

// observe reports the change from old to nj (either may be nil) when the
// state changed.
func (st *state) observe(old, nj *Job) {
	if st.observer == nil {
		return
	}
	var t Transition
	switch {
	case old == nil && nj == nil:
		return
	case old == nil:
		t = Transition{Queue: nj.Queue, Plugin: nj.Plugin, To: nj.State}
	case nj == nil:
		t = Transition{Queue: old.Queue, Plugin: old.Plugin, From: old.State}
	default:
		if old.State == nj.State {
			return
		}
		t = Transition{Queue: nj.Queue, Plugin: nj.Plugin, From: old.State, To: nj.State}
	}
	if old != nil && nj != nil && old.State == StateRunning {
		if n := len(nj.Attempts); n > 0 {
			t.Outcome = nj.Attempts[n-1].Outcome
		}
	}
	if t.To == StateRunning {
		due := max(nanos(nj.CreatedAt), nanos(nj.RunAt))
		if n := len(nj.Attempts); n > 1 {
			due = max(due, nanos(nj.Attempts[n-2].Finished))
		}
		if due > 0 && st.now > due {
			t.Wait = time.Duration(st.now - due)
		}
	}
	if t.To.Terminal() && st.now > nanos(nj.CreatedAt) {
		t.Age = time.Duration(st.now - nanos(nj.CreatedAt))
	}
	st.observer(t)
}
