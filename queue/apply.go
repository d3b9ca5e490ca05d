package queue

import (
	"fmt"
	"slices"
	"time"
)

// Limits the FSM enforces on submitted specs.
const (
	// MaxPriority bounds Spec.Priority to [-MaxPriority, MaxPriority].
	MaxPriority = 1_000_000
	// MaxQueueName is the longest queue name.
	MaxQueueName = 128
	// DefaultLeaseTTL is the lease length of claims and heartbeats that do
	// not set one.
	DefaultLeaseTTL = 30 * time.Second
	// DefaultPurgeLimit is the batch size of a Purge with Limit 0.
	DefaultPurgeLimit = 10000
)

// applyEntry applies e at raft index index and returns one result per
// command.
func (st *state) applyEntry(index uint64, e Entry) []Result {
	st.beginEntry(index, e.Now)
	st.promote()
	results := make([]Result, len(e.Cmds))
	for i, c := range e.Cmds {
		results[i] = st.apply(c)
	}
	return results
}

func (st *state) apply(c Command) Result {
	switch c := c.(type) {
	case *Submit:
		if c != nil {
			return st.submit(c)
		}
	case *Claim:
		if c != nil {
			return st.claim(c)
		}
	case *Heartbeat:
		if c != nil {
			return st.heartbeat(c)
		}
	case *Complete:
		if c != nil {
			return st.complete(c)
		}
	case *Cancel:
		if c != nil {
			return st.cancel(c)
		}
	case *Retry:
		if c != nil {
			return st.retry(c)
		}
	case *SetQueue:
		if c != nil {
			return st.setQueue(c)
		}
	case *FailNode:
		if c != nil {
			return Result{Count: st.failNode(c)}
		}
	case *ExpireLeases:
		return Result{Count: st.expireLeases()}
	case *Purge:
		if c != nil {
			return st.purge(c)
		}
	case *SubmitDAG:
		if c != nil {
			return st.submitDAG(c)
		}
	case *SetQueueRate:
		if c != nil {
			return st.setQueueRate(c)
		}
	case *SetPeriodic:
		if c != nil {
			return st.setPeriodic(c)
		}
	case *DeletePeriodic:
		if c != nil {
			return st.deletePeriodic(c)
		}
	case *FirePeriodic:
		if c != nil {
			return st.firePeriodic(c)
		}
	}
	if res, ok := st.applyBulk(c); ok {
		return res
	}
	if res, ok := st.applyACL(c); ok {
		return res
	}
	return Result{Err: fmt.Errorf("%w: unknown command %T", ErrBadCommand, c)}
}

// promote moves every scheduled job whose RunAt has come to queued, in
// (RunAt, ID) order so Seqs are assigned identically everywhere.
func (st *state) promote() {
	var due []string
	st.scheduled.Ascend(func(it timeItem) bool {
		if it.at > st.now {
			return false
		}
		due = append(due, it.id)
		return true
	})
	for _, id := range due {
		j := st.jobs[id]
		nj := st.change(j)
		nj.State = StateQueued
		nj.Seq = st.nextSeq()
		st.put(j, nj)
	}
}

func (st *state) submit(c *Submit) Result {
	if len(c.IDs) != len(c.Specs) {
		return Result{Err: fmt.Errorf("%w: submit has %d ids for %d specs", ErrBadCommand, len(c.IDs), len(c.Specs))}
	}
	out := make([]Submitted, len(c.Specs))
	for i := range c.Specs {
		if len(c.Specs[i].DependsOn) > 0 {
			out[i] = Submitted{Err: fmt.Errorf("%w: depends_on needs a SubmitDAG command", ErrBadSpec)}
			continue
		}
		out[i] = st.submitOne(c.IDs[i], &c.Specs[i])
	}
	return Result{Submitted: out}
}

func (st *state) submitOne(id string, sp *Spec) Submitted {
	if err := ValidateSpec(sp); err != nil {
		return Submitted{Err: err}
	}
	if sp.UniqueKey != "" {
		if hid, ok := st.uniqueHolder(sp.UniqueKey); ok {
			return Submitted{ID: hid, Existing: true}
		}
	}
	return st.createJob(id, sp, false)
}

// createJob makes job id from a valid spec whose unique key (if any) is
// free to take: queued, scheduled, or with blocked set, blocked. The
// spec's DependsOn is kept as the job's parents; the caller records the
// reverse edges.
func (st *state) createJob(id string, sp *Spec, blocked bool) Submitted {
	var holder *Job
	if sp.UniqueKey != "" {
		if hid, ok := st.unique[sp.UniqueKey]; ok {
			holder = st.jobs[hid]
		}
	}
	if id == "" {
		return Submitted{Err: fmt.Errorf("%w: missing job id", ErrBadSpec)}
	}
	if _, dup := st.jobs[id]; dup {
		return Submitted{Err: fmt.Errorf("%w: job id %q already exists", ErrBadSpec, id)}
	}

	qname := sp.Queue
	if qname == "" {
		qname = DefaultQueue
	}
	q := st.queue(qname)
	now := st.nowTime()
	j := &Job{
		ID: id,
		Spec: Spec{
			Queue:       q.name,
			Plugin:      st.intern(sp.Plugin),
			Payload:     sp.Payload,
			Priority:    sp.Priority,
			MaxAttempts: sp.MaxAttempts,
			Timeout:     sp.Timeout,
			RunAt:       normTime(sp.RunAt),
			UniqueKey:   sp.UniqueKey,
			UniqueFor:   sp.UniqueFor,
			Constraints: st.internMap(sp.Constraints),
			DependsOn:   slices.Clone(sp.DependsOn),
		},
		CreatedAt: now,
		UpdatedAt: now,
		Index:     st.index,
	}
	if len(j.Payload) == 0 {
		j.Payload = nil
	}
	if j.MaxAttempts == 0 {
		j.MaxAttempts = q.maxAttempts()
	}
	if j.Timeout == 0 {
		j.Timeout = DefaultTimeout
	}
	switch {
	case blocked:
		j.State = StateBlocked
	case nanos(j.RunAt) > st.now:
		j.State = StateScheduled
	default:
		j.State = StateQueued
		j.Seq = st.nextSeq()
	}
	if j.UniqueKey != "" {
		if holder != nil {
			h := *holder
			h.holdsKey = false
			st.put(holder, &h)
		}
		j.holdsKey = true
		st.unique[j.UniqueKey] = id
	}
	st.put(nil, j)
	return Submitted{ID: id}
}

// ValidateSpec checks the rules the FSM applies to a submitted spec; the
// error wraps ErrBadSpec. The daemon may call it to reject a request before
// it is replicated.
func ValidateSpec(sp *Spec) error {
	if sp.Plugin == "" {
		return fmt.Errorf("%w: plugin is required", ErrBadSpec)
	}
	if sp.Queue != "" && !ValidQueueName(sp.Queue) {
		return badName(ErrBadSpec, "queue name", sp.Queue)
	}
	if sp.Priority < -MaxPriority || sp.Priority > MaxPriority {
		return fmt.Errorf("%w: priority %d is outside [-%d, %d]", ErrBadSpec, sp.Priority, MaxPriority, MaxPriority)
	}
	if sp.MaxAttempts < 0 {
		return fmt.Errorf("%w: max_attempts %d is negative", ErrBadSpec, sp.MaxAttempts)
	}
	if sp.Timeout < 0 {
		return fmt.Errorf("%w: timeout %s is negative", ErrBadSpec, sp.Timeout)
	}
	if sp.UniqueFor < 0 {
		return fmt.Errorf("%w: unique_for %s is negative", ErrBadSpec, sp.UniqueFor)
	}
	if !sp.RunAt.IsZero() && !time.Unix(0, sp.RunAt.UnixNano()).Equal(sp.RunAt) {
		return fmt.Errorf("%w: run_at %s is out of range", ErrBadSpec, sp.RunAt)
	}
	for k := range sp.Constraints {
		if k == "" {
			return fmt.Errorf("%w: constraint with an empty key", ErrBadSpec)
		}
	}
	if len(sp.DependsOn) > MaxParents {
		return fmt.Errorf("%w: depends_on lists %d parents, over the limit of %d", ErrBadSpec, len(sp.DependsOn), MaxParents)
	}
	for i, p := range sp.DependsOn {
		switch {
		case p == "":
			return fmt.Errorf("%w: depends_on has an empty parent", ErrBadSpec)
		case len(p) > MaxParentRef:
			return fmt.Errorf("%w: depends_on entry of %d bytes is over the %d-byte limit", ErrBadSpec, len(p), MaxParentRef)
		case slices.Contains(sp.DependsOn[:i], p):
			return fmt.Errorf("%w: depends_on lists %s twice", ErrBadSpec, p)
		}
	}
	return nil
}

// badName is the error, wrapping kind, for a what ("queue name", "name"...)
// that is not a valid queue name (ValidQueueName).
func badName(kind error, what, name string) error {
	return fmt.Errorf("%w: %s %q must be 1-%d characters of A-Z a-z 0-9 _ . -", kind, what, name, MaxQueueName)
}

// ValidQueueName reports whether name is 1-128 characters of
// [A-Za-z0-9_.-].
func ValidQueueName(name string) bool {
	if len(name) == 0 || len(name) > MaxQueueName {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '.', c == '-':
		default:
			return false
		}
	}
	return true
}
