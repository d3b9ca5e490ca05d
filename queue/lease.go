package queue

import (
	"fmt"
	"slices"
	"time"
)

// Reasons given in Abort and attempt history.
const (
	reasonCancelled    = "cancelled"
	reasonNotFound     = "job not found"
	reasonStale        = "stale lease: a newer attempt owns the job"
	reasonLeaseExpired = "lease expired"
	reasonNodeFailed   = "node failed"
)

// MaxBackoff caps the retry delay so absurd attempt counts cannot overflow
// time arithmetic.
const MaxBackoff = 365 * 24 * time.Hour

func (st *state) claim(c *Claim) Result {
	if c.Node == "" {
		return Result{Err: fmt.Errorf("%w: claim without a node", ErrBadCommand)}
	}
	ttl := c.LeaseTTL
	if ttl <= 0 {
		ttl = DefaultLeaseTTL
	}
	plugins := make([]string, 0, len(c.Slots))
	for p, n := range c.Slots {
		if n > 0 {
			plugins = append(plugins, p)
		}
	}
	slices.Sort(plugins)
	node := st.intern(c.Node)
	var leases []Lease
	for _, p := range plugins {
		for _, j := range st.pick(p, c.Slots[p], c.Tags, st.now) {
			st.chargeRate(j)
			nj := st.start(j, node, ttl)
			leases = append(leases, Lease{Job: nj, Token: nj.Token})
		}
	}
	return Result{Leases: leases}
}

// pick returns the best n claimable jobs of plugin p in (priority, Seq)
// order across all queues that are not paused and have spare concurrency
// and, at the unix time now, rate-limit tokens.
func (st *state) pick(p string, n int, tags map[string]string, now int64) []*Job {
	var cands []readyItem
	queues := 0
	for _, q := range st.queues {
		t := q.ready[p]
		if t == nil || t.Len() == 0 || q.cfg.Paused {
			continue
		}
		spare := n
		if q.cfg.Concurrency > 0 {
			spare = min(spare, q.cfg.Concurrency-q.counts[StateRunning])
		}
		spare = q.rateSpare(spare, now)
		if spare <= 0 {
			continue
		}
		queues++
		t.Ascend(func(it readyItem) bool {
			if matches(it.job.Constraints, tags) {
				cands = append(cands, it)
				spare--
			}
			return spare > 0
		})
	}
	// Each queue gave at most its spare capacity, so the best n of the
	// merged candidates respect every queue's limit.
	if queues > 1 {
		slices.SortFunc(cands, func(a, b readyItem) int {
			if readyLess(a, b) {
				return -1
			}
			return 1
		})
	}
	if len(cands) > n {
		cands = cands[:n]
	}
	jobs := make([]*Job, len(cands))
	for i, c := range cands {
		jobs[i] = c.job
	}
	return jobs
}

// matches reports whether every constraint is satisfied by tags.
func matches(constraints, tags map[string]string) bool {
	for k, v := range constraints {
		if tv, ok := tags[k]; !ok || tv != v {
			return false
		}
	}
	return true
}

// start leases a queued job to node.
func (st *state) start(j *Job, node string, ttl time.Duration) *Job {
	nj := st.change(j)
	nj.State = StateRunning
	nj.Attempt++
	nj.Node = node
	nj.Token = st.nextSeq()
	nj.LeaseExpiresAt = fromNanos(addNanos(st.now, ttl))
	nj.CancelRequested = false
	atts := make([]Attempt, len(j.Attempts), len(j.Attempts)+1)
	copy(atts, j.Attempts)
	nj.Attempts = append(atts, Attempt{
		Attempt: nj.Attempt,
		Node:    node,
		Token:   nj.Token,
		Started: nj.UpdatedAt,
	})
	st.put(j, nj)
	return nj
}

func (st *state) heartbeat(c *Heartbeat) Result {
	ttl := c.LeaseTTL
	if ttl <= 0 {
		ttl = DefaultLeaseTTL
	}
	var aborts []Abort
	for _, l := range c.Leases {
		j, ok := st.jobs[l.ID]
		switch {
		case !ok:
			aborts = append(aborts, Abort{ID: l.ID, Token: l.Token, Reason: reasonNotFound})
		case j.State != StateRunning:
			aborts = append(aborts, Abort{ID: l.ID, Token: l.Token, Reason: "job is " + j.State.String()})
		case j.Node != c.Node || j.Token != l.Token:
			aborts = append(aborts, Abort{ID: l.ID, Token: l.Token, Reason: reasonStale})
		default:
			nj := st.change(j)
			nj.LeaseExpiresAt = fromNanos(addNanos(st.now, ttl))
			st.put(j, nj)
			if nj.CancelRequested {
				aborts = append(aborts, Abort{ID: l.ID, Token: l.Token, Reason: reasonCancelled})
			}
		}
	}
	return Result{Abort: aborts}
}

func (st *state) complete(c *Complete) Result {
	errs := make([]error, len(c.Reports))
	for i := range c.Reports {
		errs[i] = st.report(&c.Reports[i])
	}
	return Result{Reports: errs}
}

func (st *state) report(r *Report) error {
	switch r.Outcome {
	case OutcomeSucceeded, OutcomeFailed, OutcomeCancelled:
	default:
		return fmt.Errorf("%w: report outcome %s is not succeeded, failed or cancelled", ErrBadCommand, r.Outcome)
	}
	j, ok := st.jobs[r.ID]
	if !ok {
		return fmt.Errorf("%w: %s", ErrNotFound, r.ID)
	}
	if j.State != StateRunning || j.Token != r.Token || j.Node != r.Node {
		return fmt.Errorf("%w (job %s is %s on %q with token %d; report from %q with token %d)",
			ErrStaleToken, j.ID, j.State, j.Node, j.Token, r.Node, r.Token)
	}
	st.endAttempt(j, r.Outcome, r.Error, r.Result, r.NonRetryable)
	return nil
}

// endAttempt finishes the running attempt of j and moves it on: succeeded,
// cancelled (on request), failed (dead set) or back to scheduled with
// backoff.
func (st *state) endAttempt(j *Job, outcome Outcome, errMsg string, result []byte, nonRetryable bool) {
	nj := st.change(j)
	now := nj.UpdatedAt
	atts := slices.Clone(j.Attempts)
	if n := len(atts); n > 0 && atts[n-1].Attempt == j.Attempt {
		atts[n-1].Finished = now
		atts[n-1].Outcome = outcome
		atts[n-1].Error = errMsg
	}
	nj.Attempts = atts
	nj.Token = 0
	nj.LeaseExpiresAt = time.Time{}
	nj.CancelRequested = false
	nj.Error = errMsg
	switch {
	case outcome == OutcomeSucceeded:
		nj.State = StateSucceeded
		nj.Result = result
		if len(nj.Result) == 0 {
			nj.Result = nil
		}
		nj.Error = ""
		nj.FinishedAt = now
	case outcome == OutcomeCancelled || j.CancelRequested:
		nj.State = StateCancelled
		nj.FinishedAt = now
	case nonRetryable || j.Attempt >= j.MaxAttempts:
		nj.State = StateFailed
		nj.FinishedAt = now
	case outcome == OutcomeLost:
		// The job did nothing wrong: its node died or stalled. Run it
		// elsewhere at once (the attempt still counts, so max_attempts
		// bounds jobs that kill their nodes).
		nj.State = StateQueued
		nj.Seq = st.nextSeq()
	default:
		nj.State = StateScheduled
		base := st.queues[j.Queue].backoffBase()
		nj.RunAt = fromNanos(addNanos(st.now, Backoff(j.ID, j.Attempt, base)))
	}
	st.put(j, nj)
}

// failNode ends every lease of a node as lost.
func (st *state) failNode(c *FailNode) int {
	set := st.nodes[c.Node]
	if len(set) == 0 {
		return 0
	}
	ids := make([]string, 0, len(set))
	for id := range set {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	reason := reasonNodeFailed
	if c.Reason != "" {
		reason += ": " + c.Reason
	}
	for _, id := range ids {
		st.endAttempt(st.jobs[id], OutcomeLost, reason, nil, false)
	}
	return len(ids)
}

// expireLeases ends every lease that expired at or before now as lost.
func (st *state) expireLeases() int {
	var due []string
	st.leases.Ascend(func(it timeItem) bool {
		if it.at > st.now {
			return false
		}
		due = append(due, it.id)
		return true
	})
	for _, id := range due {
		st.endAttempt(st.jobs[id], OutcomeLost, reasonLeaseExpired, nil, false)
	}
	return len(due)
}

// Backoff returns the delay before the attempt after `attempt` failed:
// attempt^4 seconds + base + jitter, where the jitter is
// (FNV-1a(id, attempt) % 10) * (attempt+1) seconds, so every node computes
// the same value (the Sidekiq/Faktory formula). The result is capped at
// MaxBackoff; a negative base counts as zero.
func Backoff(id string, attempt int, base time.Duration) time.Duration {
	if attempt < 0 {
		attempt = 0
	}
	if attempt > 200 { // 200^4 s is far beyond MaxBackoff
		return MaxBackoff
	}
	const (
		offset64 = 14695981039346656037
		prime64  = 1099511628211
	)
	h := uint64(offset64)
	for i := 0; i < len(id); i++ {
		h ^= uint64(id[i])
		h *= prime64
	}
	for a, i := uint64(attempt), 0; i < 8; i++ {
		h ^= a & 0xff
		h *= prime64
		a >>= 8
	}
	a := int64(attempt)
	secs := a*a*a*a + int64(h%10)*(a+1)
	d := time.Duration(secs) * time.Second
	if base > 0 {
		d += min(base, MaxBackoff)
	}
	return min(d, MaxBackoff)
}
