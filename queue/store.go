package queue

import (
	"cmp"
	"io"
	"slices"
	"sync"
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
	Queue  string
	State  State
	Plugin string
	// Since, when set, keeps only jobs created at or after it.
	Since time.Time
	// Limit caps the number of jobs returned (0 = no cap); newest first.
	Limit int
}

// QueueInfo describes a queue for listing.
type QueueInfo struct {
	Name   string
	Config QueueConfig
	// Rate is the queue's rate limit and bucket; nil without one.
	Rate *RateLimit
	// Counts holds the number of jobs per state (every state is present).
	Counts map[State]int
}

// Store holds the queue state and applies entries to it.
//
// Apply, ApplyEntry and Restore must be called from one goroutine at a time
// (raft's FSM goroutine). Every other method may be called concurrently
// from any goroutine. Jobs returned by any method are immutable snapshots:
// the store never modifies a published Job (a change copies it), and
// callers must not modify them either.
type Store struct {
	mu    sync.RWMutex
	st    *state
	watch chan struct{}
	// leaseEvents counts applied commands that can end or cancel a running
	// lease other than by its own report (see LeaseEvents).
	leaseEvents uint64
	// observer is carried over to a restored state.
	observer Observer
}

// New returns an empty store.
func New() *Store {
	return &Store{st: newState(), watch: make(chan struct{})}
}

// Apply decodes one raft log entry at index and applies it. It returns one
// Result per command, or an error (and no change at all) when data does not
// decode. Called from one goroutine at a time (raft's FSM goroutine).
func (s *Store) Apply(index uint64, data []byte) ([]Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := decodeEntry(data, s.st.names)
	if err != nil {
		return nil, err
	}
	res := s.st.applyEntry(index, e)
	s.countLeaseEvents(e.Cmds)
	s.notifyLocked()
	return res, nil
}

// ApplyEntry applies an already decoded entry at index. Times are
// normalised as the codec would (UTC unix nanoseconds), so the result is the
// same as Apply(index, Encode(e)). The store keeps references to byte slices
// in e (payloads, results): callers must not modify them afterwards.
func (s *Store) ApplyEntry(index uint64, e Entry) []Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	res := s.st.applyEntry(index, e)
	s.countLeaseEvents(e.Cmds)
	s.notifyLocked()
	return res
}

// countLeaseEvents counts the commands that can end or cancel a running
// lease from outside (a cancel, a bulk cancel, a failed node, an expiry).
func (s *Store) countLeaseEvents(cmds []Command) {
	for _, c := range cmds {
		switch c.Kind() {
		case KindCancel, KindBulkCancel, KindFailNode, KindExpireLeases:
			s.leaseEvents++
		}
	}
}

// LeaseEvents returns a number that changes whenever a command that can
// cancel or end a running lease from outside (Cancel, BulkCancel,
// FailNode, ExpireLeases) has been applied since the store was made. A
// holder of leases needs to re-check them only when it changed. It is local to this
// store (not replicated, reset by a restart).
func (s *Store) LeaseEvents() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.leaseEvents
}

// notifyLocked wakes every Watch waiter and arms a fresh channel.
func (s *Store) notifyLocked() {
	close(s.watch)
	s.watch = make(chan struct{})
}

// Snapshot captures the current state cheaply (it copies job pointers, not
// jobs); the returned snapshot's WriteTo does the I/O and may run
// concurrently with later Applies.
func (s *Store) Snapshot() *Snapshot {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.st.snapshot()
}

// Restore replaces the whole state with one written by Snapshot.WriteTo. The
// new state is built aside: on any error (wrapping ErrBadSnapshot) the
// current state is left untouched.
func (s *Store) Restore(r io.Reader) error {
	st, err := readState(r)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st.observer = s.observer
	// The index only moves forward, so blocking queries that waited on the
	// old state are answered. (It is read-only until the next entry sets it
	// from raft.)
	st.index = max(st.index, s.st.index)
	s.st = st
	s.notifyLocked()
	return nil
}

// Get returns the job with the given ID.
func (s *Store) Get(id string) (*Job, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	j, ok := s.st.jobs[id]
	return j, ok
}

// newer orders jobs newest first: by CreatedAt, then by ID, descending.
func newer(a, b *Job) int {
	if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
		return c
	}
	return cmp.Compare(b.ID, a.ID)
}

// List returns the jobs matching f, newest first (by CreatedAt, then ID).
func (s *Store) List(f Filter) []*Job {
	s.mu.RLock()
	var out []*Job
	for _, j := range s.st.jobs {
		if (f.Queue == "" || j.Queue == f.Queue) && (f.State == StateInvalid || j.State == f.State) &&
			(f.Plugin == "" || j.Plugin == f.Plugin) && (f.Since.IsZero() || !j.CreatedAt.Before(f.Since)) {
			out = append(out, j)
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(out, newer)
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit:f.Limit]
	}
	return out
}

// Queues returns every known queue, sorted by name.
func (s *Store) Queues() []QueueInfo {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.st.queueInfos()
}

// queueInfos describes every queue of st, sorted by name.
func (st *state) queueInfos() []QueueInfo {
	out := make([]QueueInfo, 0, len(st.queues))
	for _, q := range st.queues {
		counts := make(map[State]int, numStates-1)
		for s := StateScheduled; s <= StateBlocked; s++ {
			counts[s] = q.counts[s]
		}
		out = append(out, QueueInfo{Name: q.name, Config: q.cfg, Rate: q.rateLimit(), Counts: counts})
	}
	slices.SortFunc(out, func(a, b QueueInfo) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// Counts returns the number of jobs per state across all queues (every
// state is present).
func (s *Store) Counts() map[State]int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	counts := make(map[State]int, numStates-1)
	for st := StateScheduled; st <= StateBlocked; st++ {
		counts[st] = 0
	}
	for _, q := range s.st.queues {
		for st := StateScheduled; st <= StateBlocked; st++ {
			counts[st] += q.counts[st]
		}
	}
	return counts
}

// QueuedByPlugin returns the number of queued jobs per plugin (plugins with
// none are absent), including jobs of paused queues. The daemon uses it to
// notice jobs that no node can run.
func (s *Store) QueuedByPlugin() map[string]int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make(map[string]int)
	for _, q := range s.st.queues {
		for p, t := range q.ready {
			if n := t.Len(); n > 0 {
				out[p] += n
			}
		}
	}
	return out
}

// Claimable reports whether a Claim for these slots from a node with these
// tags would lease at least one job in an entry stamped with the time of
// the last one. It is a read-only dry run of the claim rules (paused
// queues, concurrency caps, rate limits, constraints), so the leader
// writes no claim entry that cannot grant anything: jobs nobody can run
// cost no raft entries.
func (s *Store) Claimable(tags map[string]string, slots map[string]int) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ok, _ := s.st.claimable(tags, slots, s.st.now)
	return ok
}

// ClaimableAt is Claimable for an entry stamped now (the leader's clock).
// When nothing is claimable, wake is the earliest time at which a rate
// limit that holds back a job these slots could otherwise take gets a
// token (zero when none does): the leader claims again then.
func (s *Store) ClaimableAt(now time.Time, tags map[string]string, slots map[string]int) (ok bool, wake time.Time) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ok, next := s.st.claimable(tags, slots, nanos(now))
	return ok, fromNanos(next)
}

// Index returns the raft index of the last applied entry.
func (s *Store) Index() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.st.index
}

// Watch returns the current index and a channel that is closed by the next
// Apply or Restore. Blocking queries wait on it.
func (s *Store) Watch() (uint64, <-chan struct{}) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.st.index, s.watch
}

// NextDeadline returns the earliest time at which a timed transition is due
// (a scheduled job's RunAt, a lease expiry, or a retention purge), or the
// zero time if none is pending. The leader uses it to time its ticks.
func (s *Store) NextDeadline() time.Time {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var next int64
	found := false
	consider := func(at int64) {
		if !found || at < next {
			next, found = at, true
		}
	}
	if it, ok := s.st.scheduled.Min(); ok {
		consider(it.at)
	}
	if it, ok := s.st.leases.Min(); ok {
		consider(it.at)
	}
	for _, q := range s.st.queues {
		if it, ok := q.done.Min(); ok {
			consider(addNanos(it.at, q.retention()))
		}
	}
	if !found {
		return time.Time{}
	}
	if next == 0 { // the epoch itself; keep it distinguishable from "none"
		next = 1
	}
	return fromNanos(next)
}

// Running returns the leases currently held by node, sorted by job ID.
func (s *Store) Running(node string) []LeaseRef {
	s.mu.RLock()
	defer s.mu.RUnlock()
	set := s.st.nodes[node]
	out := make([]LeaseRef, 0, len(set))
	for id := range set {
		out = append(out, LeaseRef{ID: id, Token: s.st.jobs[id].Token})
	}
	slices.SortFunc(out, func(a, b LeaseRef) int { return cmp.Compare(a.ID, b.ID) })
	return out
}
