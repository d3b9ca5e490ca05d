package queue

import (
	"fmt"
	"time"
)

// State is the lifecycle state of a job.
//
//	scheduled -> queued -> running -> succeeded | failed | cancelled
//
// A failed attempt with attempts left goes back to scheduled with backoff.
// A job with parents (Spec.DependsOn) starts blocked and moves on to
// queued (or scheduled) when its last parent succeeded; a failed or
// cancelled parent cancels it (deps.go).
type State uint8

// Job states. The zero value is invalid so a forgotten assignment is caught.
const (
	StateInvalid State = iota
	StateScheduled
	StateQueued
	StateRunning
	StateSucceeded
	StateFailed
	StateCancelled
	// StateBlocked: waiting for its parents to succeed (deps.go).
	StateBlocked
)

var stateNames = [...]string{"invalid", "scheduled", "queued", "running", "succeeded", "failed", "cancelled", "blocked"}

// String returns the lower-case API name of the state.
func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// Terminal reports whether no further transition can happen (except an
// explicit retry of a failed job).
func (s State) Terminal() bool {
	return s == StateSucceeded || s == StateFailed || s == StateCancelled
}

// ParseState maps an API name onto a State.
func ParseState(name string) (State, error) {
	for i, n := range stateNames {
		if i > 0 && n == name {
			return State(i), nil
		}
	}
	return StateInvalid, fmt.Errorf("%w: %q (want blocked, scheduled, queued, running, succeeded, failed or cancelled)", ErrBadState, name)
}

// MarshalText implements encoding.TextMarshaler.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *State) UnmarshalText(b []byte) error {
	v, err := ParseState(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// Outcome is how one attempt ended.
type Outcome uint8

// Attempt outcomes.
const (
	OutcomeInvalid   Outcome = iota
	OutcomeSucceeded         // the plugin returned a result
	OutcomeFailed            // the plugin returned an error (or crashed, or timed out)
	OutcomeCancelled         // the call was cancelled on request
	OutcomeLost              // the lease expired or the node failed
)

var outcomeNames = [...]string{"invalid", "succeeded", "failed", "cancelled", "lost"}

// String returns the lower-case API name of the outcome.
func (o Outcome) String() string {
	if int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return fmt.Sprintf("outcome(%d)", uint8(o))
}

// MarshalText implements encoding.TextMarshaler.
func (o Outcome) MarshalText() ([]byte, error) { return []byte(o.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (o *Outcome) UnmarshalText(b []byte) error {
	for i, n := range outcomeNames {
		if i > 0 && n == string(b) {
			*o = Outcome(i)
			return nil
		}
	}
	return fmt.Errorf("unknown outcome %q", b)
}

// Spec is what a client submits: the user-settable fields of a job. Zero
// values mean "use the default" (see Defaults).
type Spec struct {
	// Queue is the named queue, created on first use. Default "default".
	Queue string
	// Plugin names the worker plugin that runs the job. Required.
	Plugin string
	// Payload is opaque to Corral and handed to the plugin.
	Payload []byte
	// Priority orders jobs in a queue: higher first, FIFO within a priority.
	Priority int
	// MaxAttempts bounds the number of attempts (default: the queue's, 25).
	MaxAttempts int
	// Timeout bounds one attempt (default 30m).
	Timeout time.Duration
	// RunAt schedules the first attempt; zero means now. The leader turns a
	// relative delay into RunAt before the command is replicated.
	RunAt time.Time
	// UniqueKey makes the submit idempotent: while a job with the same key is
	// not terminal (or was created less than UniqueFor ago) the submit returns
	// that job's ID instead of creating a new one.
	UniqueKey string
	// UniqueFor extends uniqueness past the end of the job (see UniqueKey).
	UniqueFor time.Duration
	// Constraints are node tags that must all match for a node to claim it.
	Constraints map[string]string
	// DependsOn lists the IDs of the job's parents: it stays blocked until
	// each of them succeeded (deps.go). Only a SubmitDAG carries it; it is
	// not part of the job record encoding but of the "deps" snapshot
	// section. In a stored job it holds the parents still stored (a
	// purged parent is dropped from it).
	DependsOn []string
}

// Attempt is one entry of a job's history.
type Attempt struct {
	Attempt  int       // 1-based attempt number
	Node     string    // node that ran it
	Token    uint64    // fencing token of the lease
	Started  time.Time // claim time
	Finished time.Time // report/expiry time
	Outcome  Outcome
	Error    string
}

// Job is a job as the FSM holds it. Jobs handed out by the store are
// immutable snapshots: callers must not modify them.
type Job struct {
	ID string
	Spec
	State State
	// Attempt is the number of the current or last attempt (0 before the first claim).
	Attempt int
	// Node holds the lease while running; after that the node of the last attempt.
	Node string
	// Token is the fencing token of the current lease (0 when not running).
	// Tokens and Seqs come from one FSM counter: the next value is
	// max(previous+1, raftIndex<<20), so they are unique, strictly
	// increasing, derived from the raft index of the claim, and identical
	// on every node and after a restore.
	Token uint64
	// LeaseExpiresAt is when the current lease ends unless renewed.
	LeaseExpiresAt time.Time
	// CancelRequested is set when a running job was asked to cancel; the
	// node running it aborts the call and reports, then it ends cancelled.
	CancelRequested bool
	Result          []byte
	Error           string
	Attempts        []Attempt
	CreatedAt       time.Time
	UpdatedAt       time.Time
	FinishedAt      time.Time
	// Seq orders jobs within a priority (FIFO); assigned (see Token) each
	// time the job enters the queued state.
	Seq uint64
	// Index is the raft index of the last change to this job.
	Index uint64

	// holdsKey is set while this job is the one a submit with its UniqueKey
	// is compared against. It is replicated through snapshots so a restored
	// store dedupes exactly like the original.
	holdsKey bool
}
