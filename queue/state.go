package queue

import (
	"math"
	"time"

	"github.com/google/btree"
)

// btreeDegree is the degree of every index btree.
const btreeDegree = 32

// numStates sizes per-state count arrays (StateInvalid..StateBlocked).
const numStates = int(StateBlocked) + 1

// readyItem is one queued job in a (queue, plugin) ready tree. The order
// (priority desc, Seq asc) is total because Seq is unique, so every node pops
// jobs in the same order.
type readyItem struct {
	prio int
	seq  uint64
	job  *Job
}

func readyLess(a, b readyItem) bool {
	if a.prio != b.prio {
		return a.prio > b.prio
	}
	return a.seq < b.seq
}

// timeItem orders jobs by a time (unix nanos) and then by ID.
type timeItem struct {
	at int64
	id string
}

func timeLess(a, b timeItem) bool {
	if a.at != b.at {
		return a.at < b.at
	}
	return a.id < b.id
}

// queueState is a named queue: its replicated configuration plus the
// derived per-queue indexes.
type queueState struct {
	name   string
	cfg    QueueConfig
	counts [numStates]int
	// ready holds the queued jobs per plugin.
	ready map[string]*btree.BTreeG[readyItem]
	// done holds the terminal jobs by (FinishedAt, ID); a job's purge time is
	// FinishedAt + the queue's retention, so a retention change needs no
	// re-indexing.
	done *btree.BTreeG[timeItem]
	// blocked holds the jobs waiting for parents by (CreatedAt, ID), for
	// bulk cancel.
	blocked *btree.BTreeG[timeItem]
	// rate is the queue's token bucket; nil without a rate limit
	// (rate.go).
	rate *bucket
}

func newQueueState(name string) *queueState {
	return &queueState{
		name:    name,
		ready:   make(map[string]*btree.BTreeG[readyItem]),
		done:    btree.NewG(btreeDegree, timeLess),
		blocked: btree.NewG(btreeDegree, timeLess),
	}
}

func (q *queueState) retention() time.Duration {
	if q.cfg.Retention > 0 {
		return q.cfg.Retention
	}
	return DefaultRetention
}

func (q *queueState) backoffBase() time.Duration {
	if q.cfg.BackoffBase > 0 {
		return q.cfg.BackoffBase
	}
	return DefaultBackoffBase
}

func (q *queueState) maxAttempts() int {
	if q.cfg.MaxAttempts > 0 {
		return q.cfg.MaxAttempts
	}
	return DefaultMaxAttempts
}

// state is the whole replicated state plus its indexes. It is not safe for
// concurrent use; Store guards it.
type state struct {
	jobs      map[string]*Job
	queues    map[string]*queueState
	scheduled *btree.BTreeG[timeItem] // (RunAt, ID)
	leases    *btree.BTreeG[timeItem] // (LeaseExpiresAt, ID)
	nodes     map[string]map[string]struct{}
	// unique maps a unique key to the job that holds it (Job.holdsKey).
	unique map[string]string
	// names interns queue, plugin, node and constraint strings.
	names map[string]string
	// periodics holds the periodic jobs by name (periodic.go).
	periodics map[string]*periodicState
	// acl holds ACL policies and tokens; nil until the first ACL command.
	acl *aclState
	// children maps a job ID to the IDs of its stored children, sorted
	// (deps.go); a job's parents are in its Spec.DependsOn.
	children map[string][]string
	// cascading is set while cancelDescendants runs, so the puts it makes
	// do not start cascades of their own.
	cascading bool

	// index is the raft index of the last applied entry.
	index uint64
	// seq is the last Seq or Token handed out. Both come from one counter:
	// the first value of an entry at raft index i is max(seq+1, i<<20) and
	// each further one adds 1, so values are unique, strictly increasing and
	// identical on every node.
	seq uint64

	// now is the current entry's time (unix nanos), set by beginEntry.
	now int64

	// observer, when set, is told of every job state change (metrics).
	// It is not part of the replicated state.
	observer Observer
}

func newState() *state {
	return &state{
		jobs:      make(map[string]*Job),
		queues:    make(map[string]*queueState),
		scheduled: btree.NewG(btreeDegree, timeLess),
		leases:    btree.NewG(btreeDegree, timeLess),
		nodes:     make(map[string]map[string]struct{}),
		unique:    make(map[string]string),
		names:     make(map[string]string),
		children:  make(map[string][]string),
	}
}

// beginEntry prepares the sequence counter and clock for an entry.
func (st *state) beginEntry(index uint64, now time.Time) {
	st.index = index
	st.now = nanos(now)
}

// nextSeq returns a fresh Seq or fencing token: max(seq+1, index<<20).
func (st *state) nextSeq() uint64 {
	st.seq = max(st.seq+1, st.index<<20)
	return st.seq
}

// nowTime returns the entry time as a time.Time.
func (st *state) nowTime() time.Time { return fromNanos(st.now) }

// intern returns the canonical copy of a name so that a million jobs share
// one string per queue, plugin and node.
func (st *state) intern(s string) string {
	if v, ok := st.names[s]; ok {
		return v
	}
	st.names[s] = s
	return s
}

func (st *state) internMap(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[st.intern(k)] = st.intern(v)
	}
	return out
}

// queue returns the named queue, creating it on first use.
func (st *state) queue(name string) *queueState {
	if q, ok := st.queues[name]; ok {
		return q
	}
	name = st.intern(name)
	q := newQueueState(name)
	st.queues[name] = q
	return q
}

// put replaces old with nj in the job map and every index. old == nil adds
// a job; nj == nil deletes one. All state changes go through put, so the
// indexes always agree with the jobs.
func (st *state) put(old, nj *Job) {
	st.observe(old, nj)
	if old != nil {
		st.unindex(old)
	}
	if nj == nil {
		delete(st.jobs, old.ID)
		st.dropEdges(old)
		return
	}
	st.jobs[nj.ID] = nj
	st.addIndex(nj)
	if old != nil && old.State != nj.State {
		st.parentChanged(nj)
	}
}

// addIndex adds j to the indexes of its state. It reports false when an
// index already held an item with the same key (only possible for corrupt
// snapshots).
func (st *state) addIndex(j *Job) bool {
	q := st.queues[j.Queue]
	q.counts[j.State]++
	var dup bool
	switch j.State {
	case StateScheduled:
		_, dup = st.scheduled.ReplaceOrInsert(timeItem{nanos(j.RunAt), j.ID})
	case StateQueued:
		t := q.ready[j.Plugin]
		if t == nil {
			t = btree.NewG(btreeDegree, readyLess)
			q.ready[j.Plugin] = t
		}
		_, dup = t.ReplaceOrInsert(readyItem{j.Priority, j.Seq, j})
	case StateBlocked:
		// A blocked job waits for its parents (deps.go).
		_, dup = q.blocked.ReplaceOrInsert(timeItem{nanos(j.CreatedAt), j.ID})
	case StateRunning:
		_, dup = st.leases.ReplaceOrInsert(timeItem{nanos(j.LeaseExpiresAt), j.ID})
		set := st.nodes[j.Node]
		if set == nil {
			set = make(map[string]struct{})
			st.nodes[j.Node] = set
		}
		set[j.ID] = struct{}{}
	default:
		_, dup = q.done.ReplaceOrInsert(timeItem{nanos(j.FinishedAt), j.ID})
	}
	return !dup
}

func (st *state) unindex(j *Job) {
	q := st.queues[j.Queue]
	q.counts[j.State]--
	switch j.State {
	case StateScheduled:
		st.scheduled.Delete(timeItem{nanos(j.RunAt), j.ID})
	case StateQueued:
		q.ready[j.Plugin].Delete(readyItem{prio: j.Priority, seq: j.Seq})
	case StateBlocked:
		q.blocked.Delete(timeItem{nanos(j.CreatedAt), j.ID})
	case StateRunning:
		st.leases.Delete(timeItem{nanos(j.LeaseExpiresAt), j.ID})
		set := st.nodes[j.Node]
		delete(set, j.ID)
		if len(set) == 0 {
			delete(st.nodes, j.Node)
		}
	default:
		q.done.Delete(timeItem{nanos(j.FinishedAt), j.ID})
	}
}

// change returns a copy of j stamped with the entry's time and index, ready
// to be modified and published with put.
func (st *state) change(j *Job) *Job {
	nj := *j
	nj.UpdatedAt = st.nowTime()
	nj.Index = st.index
	return &nj
}

// nanos converts t to unix nanoseconds; the zero time is 0.
func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// fromNanos is the inverse of nanos. Times are UTC without a monotonic
// reading, so equal instants are deep-equal on every node.
func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// addNanos adds d to the unix time n, saturating instead of overflowing.
func addNanos(n int64, d time.Duration) int64 {
	if d > 0 && n > math.MaxInt64-int64(d) {
		return math.MaxInt64
	}
	if d < 0 && n < math.MinInt64-int64(d) {
		return math.MinInt64
	}
	return n + int64(d)
}

// normTime maps t onto the representation the codec produces.
func normTime(t time.Time) time.Time { return fromNanos(nanos(t)) }
