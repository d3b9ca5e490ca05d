package queue

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/corral-dev/corral/internal/binenc"
)

// Errors of bulk operations and queue deletion.
var (
	// ErrBadFilter means a bulk command's filter is invalid; it is wrapped
	// with details.
	ErrBadFilter = errors.New("invalid job filter")
	// ErrQueueNotFound means no queue has that name.
	ErrQueueNotFound = errors.New("queue not found")
	// ErrQueueNotEmpty means a queue still holds jobs and cannot be
	// deleted; it is wrapped with how many.
	ErrQueueNotEmpty = errors.New("queue is not empty")
)

// Command kinds of bulk operations (see Kind: values are part of the log
// format).
const (
	KindBulkRetry   Kind = 17 // *BulkRetry
	KindBulkCancel  Kind = 18 // *BulkCancel
	KindDeleteQueue Kind = 19 // *DeleteQueue
)

const (
	// DefaultBulkLimit is the batch size of a bulk command with Limit 0.
	DefaultBulkLimit = 500
	// MaxBulkLimit bounds a bulk command's Limit, so one entry's Apply
	// stays short.
	MaxBulkLimit = 10000
)

// BulkFilter selects the jobs a bulk command acts on. Zero fields match
// everything (within the states the command acts on).
type BulkFilter struct {
	// Queue, when set, matches only jobs of this queue.
	Queue string
	// State, when set, matches only jobs in this state: failed or
	// cancelled for BulkRetry; scheduled, queued or running for
	// BulkCancel.
	State State
	// Plugin, when set, matches only jobs of this plugin.
	Plugin string
	// CreatedBefore, when set, matches only jobs created strictly before
	// it (older jobs).
	CreatedBefore time.Time
	// OlderThan, when set (and CreatedBefore is not), matches only jobs
	// created more than OlderThan before the entry's time (the leader's
	// clock). Result.Resume carries the cutoff as CreatedBefore, so every
	// batch of one operation uses the same cutoff.
	OlderThan time.Duration
	// Through, when set, matches only jobs whose last change was at or
	// before this raft index; 0 means the index of the command's own
	// entry. Result.Resume carries it, so an operation acts only on the
	// jobs that matched when it began: a retried job that fails again, or
	// a job submitted meanwhile, is not taken by a later batch, and the
	// operation ends.
	Through uint64
	// Limit is the most jobs one command changes (0 = DefaultBulkLimit);
	// Result.More says whether matching jobs remain.
	Limit int
}

// BulkRetry retries up to Filter.Limit failed or cancelled jobs matching
// Filter, each by the rule of Retry. Jobs are taken queue by queue in name
// order, within a queue in the order they ended (then by ID).
// Result.Count is how many were retried, Result.More whether matching jobs
// remain, and Result.Resume the filter the next batch sends (with the
// cutoffs of this one fixed).
type BulkRetry struct {
	Filter BulkFilter
}

// Kind implements Command.
func (*BulkRetry) Kind() Kind { return KindBulkRetry }

// BulkCancel cancels up to Filter.Limit scheduled, queued or running jobs
// matching Filter, each by the rule of Cancel (a running job gets a
// cancel request; one that already has it does not match). Jobs are taken
// scheduled ones first (by run_at, then ID), then queued ones (queue by
// queue in name order, plugin by plugin, in claim order), then running
// ones (by lease expiry, then ID). The result is as BulkRetry's.
type BulkCancel struct {
	Filter BulkFilter
}

// Kind implements Command.
func (*BulkCancel) Kind() Kind { return KindBulkCancel }

// DeleteQueue deletes a queue that holds no jobs at all (of any state),
// with its configuration (pause, concurrency, retention...). A queue with
// jobs is ErrQueueNotEmpty and is left as it is: its terminal jobs go
// once retention purges them. A later submit to the name creates the
// queue afresh, with default settings.
type DeleteQueue struct {
	Name string
}

// Kind implements Command.
func (*DeleteQueue) Kind() Kind { return KindDeleteQueue }

// bulkStates returns the states a bulk command of kind k acts on.
func bulkStates(k Kind) []State {
	if k == KindBulkRetry {
		return []State{StateFailed, StateCancelled}
	}
	return []State{StateBlocked, StateScheduled, StateQueued, StateRunning}
}

// ValidateBulk checks a bulk command's filter (k is KindBulkRetry or
// KindBulkCancel); the error wraps ErrBadFilter. The daemon calls it to
// reject a request before it is replicated.
func ValidateBulk(k Kind, f *BulkFilter) error {
	if k != KindBulkRetry && k != KindBulkCancel {
		return fmt.Errorf("%w: %d is not a bulk command kind", ErrBadFilter, k)
	}
	if f.Queue != "" && !ValidQueueName(f.Queue) {
		return badName(ErrBadFilter, "queue name", f.Queue)
	}
	if f.Plugin != "" && !ValidPluginName(f.Plugin) {
		return fmt.Errorf("%w: plugin name %q must match [a-z0-9][a-z0-9_-]{0,63}", ErrBadFilter, f.Plugin)
	}
	if f.State != StateInvalid {
		ok := false
		var names []string
		for _, s := range bulkStates(k) {
			ok = ok || s == f.State
			names = append(names, s.String())
		}
		if !ok {
			verb := "retry"
			if k == KindBulkCancel {
				verb = "cancel"
			}
			return fmt.Errorf("%w: cannot %s %s jobs (state must be %s)", ErrBadFilter, verb, f.State, strings.Join(names, " or "))
		}
	}
	if f.OlderThan < 0 {
		return fmt.Errorf("%w: older_than %s is negative", ErrBadFilter, f.OlderThan)
	}
	if !f.CreatedBefore.IsZero() && f.OlderThan != 0 {
		return fmt.Errorf("%w: set either created_before or older_than, not both", ErrBadFilter)
	}
	if f.Limit < 0 || f.Limit > MaxBulkLimit {
		return fmt.Errorf("%w: limit %d is outside [0, %d]", ErrBadFilter, f.Limit, MaxBulkLimit)
	}
	return nil
}

// resolveBulk returns f with its relative bounds made absolute for an
// entry at time now and raft index index: OlderThan becomes CreatedBefore,
// a zero Through becomes index.
func resolveBulk(f BulkFilter, now int64, index uint64) BulkFilter {
	if f.CreatedBefore.IsZero() && f.OlderThan > 0 {
		f.CreatedBefore = fromNanos(addNanos(now, -f.OlderThan))
	}
	f.OlderThan = 0
	if f.Through == 0 {
		f.Through = index
	}
	return f
}

// bulkMatch returns the IDs of the first limit jobs (all with limit < 0)
// that a bulk command of kind k would change under the resolved filter f,
// in the order the command takes them, and whether more match.
func (st *state) bulkMatch(k Kind, f *BulkFilter, limit int) (ids []string, more bool) {
	cutoff := nanos(f.CreatedBefore)
	visit := func(j *Job) bool {
		if (f.Queue != "" && j.Queue != f.Queue) || (f.Plugin != "" && j.Plugin != f.Plugin) ||
			(f.State != StateInvalid && j.State != f.State) || (cutoff != 0 && nanos(j.CreatedAt) >= cutoff) ||
			j.Index > f.Through {
			return true
		}
		if limit >= 0 && len(ids) >= limit {
			more = true
			return false
		}
		ids = append(ids, j.ID)
		return true
	}
	wants := func(s State) bool { return f.State == StateInvalid || f.State == s }
	if k == KindBulkRetry {
		for _, q := range st.queuesNamed(f.Queue) {
			q.done.Ascend(func(it timeItem) bool {
				j := st.jobs[it.id]
				return (j.State != StateFailed && j.State != StateCancelled) || visit(j)
			})
			if more {
				break
			}
		}
		return ids, more
	}
	if wants(StateBlocked) {
		for _, q := range st.queuesNamed(f.Queue) {
			q.blocked.Ascend(func(it timeItem) bool { return visit(st.jobs[it.id]) })
			if more {
				break
			}
		}
	}
	if wants(StateScheduled) && !more {
		st.scheduled.Ascend(func(it timeItem) bool { return visit(st.jobs[it.id]) })
	}
	if wants(StateQueued) && !more {
	queues:
		for _, q := range st.queuesNamed(f.Queue) {
			for _, p := range slices.Sorted(maps.Keys(q.ready)) {
				if f.Plugin != "" && p != f.Plugin {
					continue
				}
				q.ready[p].Ascend(func(it readyItem) bool { return visit(it.job) })
				if more {
					break queues
				}
			}
		}
	}
	if wants(StateRunning) && !more {
		st.leases.Ascend(func(it timeItem) bool {
			j := st.jobs[it.id]
			return j.CancelRequested || visit(j)
		})
	}
	return ids, more
}

// queuesNamed returns the named queue ("" for every queue, in name order).
func (st *state) queuesNamed(name string) []*queueState {
	if name != "" {
		if q, ok := st.queues[name]; ok {
			return []*queueState{q}
		}
		return nil
	}
	out := make([]*queueState, 0, len(st.queues))
	for _, n := range slices.Sorted(maps.Keys(st.queues)) {
		out = append(out, st.queues[n])
	}
	return out
}

// bulk applies a BulkRetry or BulkCancel: the per-job rule of Retry or
// Cancel to each matching job, up to the limit.
func (st *state) bulk(k Kind, f BulkFilter) Result {
	if err := ValidateBulk(k, &f); err != nil {
		return Result{Err: err}
	}
	f = resolveBulk(f, st.now, st.index)
	limit := f.Limit
	if limit == 0 {
		limit = DefaultBulkLimit
	}
	ids, more := st.bulkMatch(k, &f, limit)
	var n int
	if k == KindBulkRetry {
		n = st.retryAll(ids)
	} else {
		n = st.cancelAll(ids)
	}
	return Result{Count: n, More: more, Resume: &f}
}

// cancelAll cancels the jobs ids and returns how many ended cancelled or
// have a cancel request. A job cancelled already in this batch, as the
// blocked descendant of one cancelled before it, counts too.
func (st *state) cancelAll(ids []string) int {
	n := 0
	for _, id := range ids {
		j := st.jobs[id]
		if j != nil && (j.State == StateCancelled || j.CancelRequested) {
			n++
		} else if r := st.cancelJob(j); r.Err == nil {
			n++
		}
	}
	return n
}

// retryAll retries the jobs ids and returns how many it retried. A child
// whose failed or cancelled parent comes later in ids is refused at first
// and retried once the parent is (it goes back to blocked), so a bulk
// retry brings back a chain its failure cancelled. Each job is tried
// again only when one of its parents was retried, so the work is linear
// in ids and their edges whatever their order.
func (st *state) retryAll(ids []string) int {
	n := 0
	refused := map[string]bool{}
	var retry func(id string)
	retry = func(id string) {
		if r := st.retryJob(st.jobs[id]); r.Err != nil {
			refused[id] = true
			return
		}
		delete(refused, id)
		n++
		for _, kid := range st.children[id] {
			if refused[kid] {
				retry(kid)
			}
		}
	}
	for _, id := range ids {
		retry(id)
	}
	return n
}

func (st *state) deleteQueue(c *DeleteQueue) Result {
	if !ValidQueueName(c.Name) {
		return Result{Err: badName(ErrBadQueue, "queue name", c.Name)}
	}
	q, ok := st.queues[c.Name]
	if !ok {
		return Result{Err: fmt.Errorf("%w: %s", ErrQueueNotFound, c.Name)}
	}
	total := 0
	var held []string
	for s := StateScheduled; s < State(numStates); s++ {
		if n := q.counts[s]; n > 0 {
			total += n
			held = append(held, fmt.Sprintf("%d %s", n, s))
		}
	}
	if total > 0 {
		return Result{Err: fmt.Errorf("%w: %s still holds %d jobs (%s); cancel the unfinished ones and wait until retention (%s) purges the finished ones",
			ErrQueueNotEmpty, c.Name, total, strings.Join(held, ", "), q.retention())}
	}
	delete(st.queues, c.Name)
	return Result{}
}

// applyBulk applies the commands of this file; ok is false for any other
// command.
func (st *state) applyBulk(c Command) (_ Result, ok bool) {
	switch c := c.(type) {
	case *BulkRetry:
		if c != nil {
			return st.bulk(KindBulkRetry, c.Filter), true
		}
	case *BulkCancel:
		if c != nil {
			return st.bulk(KindBulkCancel, c.Filter), true
		}
	case *DeleteQueue:
		if c != nil {
			return st.deleteQueue(c), true
		}
	}
	return Result{}, false
}

// CountBulk counts, on this replica, the jobs a bulk command of kind k
// with filter f would change in all its batches (a dry run; f.Limit is
// ignored). now stands in for the entry's time of OlderThan.
func (s *Store) CountBulk(k Kind, f BulkFilter, now time.Time) (int, error) {
	f.Limit = 0
	if err := ValidateBulk(k, &f); err != nil {
		return 0, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	f = resolveBulk(f, nanos(now), s.st.index)
	ids, _ := s.st.bulkMatch(k, &f, -1)
	return len(ids), nil
}

// Bulk codec: commands.

func appendBulkFilter(b []byte, f *BulkFilter) []byte {
	b = binenc.AppendString(b, f.Queue)
	b = append(b, byte(f.State))
	b = binenc.AppendString(b, f.Plugin)
	b = binenc.AppendTime(b, f.CreatedBefore)
	b = binary.AppendVarint(b, int64(f.OlderThan))
	b = binary.AppendUvarint(b, f.Through)
	return binary.AppendVarint(b, int64(f.Limit))
}

func (d *decoder) bulkFilter() BulkFilter {
	return BulkFilter{Queue: d.name(), State: State(d.Byte()), Plugin: d.name(),
		CreatedBefore: d.Time(), OlderThan: d.Dur(), Through: d.Uvarint(), Limit: d.Int()}
}

// appendBulkCommand encodes the commands of this file; ok is false for
// any other command.
func appendBulkCommand(b []byte, c Command) (_ []byte, ok bool) {
	switch c := c.(type) {
	case *BulkRetry:
		if c != nil {
			return appendBulkFilter(append(b, byte(KindBulkRetry)), &c.Filter), true
		}
	case *BulkCancel:
		if c != nil {
			return appendBulkFilter(append(b, byte(KindBulkCancel)), &c.Filter), true
		}
	case *DeleteQueue:
		if c != nil {
			return binenc.AppendString(append(b, byte(KindDeleteQueue)), c.Name), true
		}
	}
	return b, false
}

// bulkCommand decodes the command of kind k of this file (nil for
// another kind).
func (d *decoder) bulkCommand(k Kind) Command {
	switch k {
	case KindBulkRetry:
		return &BulkRetry{Filter: d.bulkFilter()}
	case KindBulkCancel:
		return &BulkCancel{Filter: d.bulkFilter()}
	case KindDeleteQueue:
		return &DeleteQueue{Name: d.Str()}
	}
	return nil
}
