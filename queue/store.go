package queue

import (
	"io"
	"time"
)

// Defaults the FSM applies to zero-valued spec fields. They are constants
// so every node applies the same values.
const (
	DefaultQueue       = "default"
	DefaultMaxAttempts = 25
	DefaultTimeout     = 30 * time.Minute
	DefaultRetention   = 24 * time.Hour
	DefaultBackoffBase = 15 * time.Second
)

// Filter selects jobs for List. Zero fields match everything.
type Filter struct {
	Queue string
	State State
	// Limit caps the number of jobs returned (0 = no cap); newest first.
	Limit int
}

// QueueInfo describes a queue for listing.
type QueueInfo struct {
	Name   string
	Config QueueConfig
	// Counts holds the number of jobs per state.
	Counts map[State]int
}

// Store holds the queue state and applies entries to it.
type Store struct{}

// New returns an empty store.
func New() *Store { panic("not implemented") }

// Apply decodes one raft log entry at index and applies it. It returns one
// Result per command, or an error (and no change at all) when data does not
// decode. Called from one goroutine at a time (raft's FSM goroutine).
func (s *Store) Apply(index uint64, data []byte) ([]Result, error) { panic("not implemented") }

// ApplyEntry applies an already decoded entry at index.
func (s *Store) ApplyEntry(index uint64, e Entry) []Result { panic("not implemented") }

// Snapshot captures the current state cheaply; the returned snapshot's
// WriteTo does the I/O and may run concurrently with later Applies.
func (s *Store) Snapshot() *Snapshot { panic("not implemented") }

// Restore replaces the whole state with one written by Snapshot.WriteTo.
func (s *Store) Restore(r io.Reader) error { panic("not implemented") }

// Snapshot is a point-in-time copy of the state.
type Snapshot struct{}

// WriteTo writes the snapshot in the format Restore reads.
func (sn *Snapshot) WriteTo(w io.Writer) (int64, error) { panic("not implemented") }

// Get returns the job with the given ID.
func (s *Store) Get(id string) (*Job, bool) { panic("not implemented") }

// List returns the jobs matching f, newest first.
func (s *Store) List(f Filter) []*Job { panic("not implemented") }

// Queues returns every known queue, sorted by name.
func (s *Store) Queues() []QueueInfo { panic("not implemented") }

// Index returns the raft index of the last applied entry.
func (s *Store) Index() uint64 { panic("not implemented") }

// Watch returns the current index and a channel that is closed by the next
// Apply or Restore. Blocking queries wait on it.
func (s *Store) Watch() (uint64, <-chan struct{}) { panic("not implemented") }

// NextDeadline returns the earliest time at which a timed transition is due
// (a scheduled job's RunAt, a lease expiry, or a retention purge), or the
// zero time if none is pending. The leader uses it to time its ticks.
func (s *Store) NextDeadline() time.Time { panic("not implemented") }

// Running returns the leases currently held by node.
func (s *Store) Running(node string) []LeaseRef { panic("not implemented") }

// Backoff returns the delay before the attempt after `attempt` failed:
// attempt^4 seconds + base + jitter, where the jitter is derived from the
// job ID and attempt so every node computes the same value.
func Backoff(id string, attempt int, base time.Duration) time.Duration { panic("not implemented") }

// Encode serializes an entry for the raft log.
func Encode(e Entry) ([]byte, error) { panic("not implemented") }

// Decode parses an entry written by Encode. Malformed input returns an
// error wrapping ErrBadCommand, never panics.
func Decode(data []byte) (Entry, error) { panic("not implemented") }
