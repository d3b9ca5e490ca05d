package queue

import (
	"fmt"
	"slices"
	"time"
)

func (st *state) cancel(c *Cancel) Result {
	j, ok := st.jobs[c.ID]
	if !ok {
		return Result{Err: fmt.Errorf("%w: %s", ErrNotFound, c.ID)}
	}
	return st.cancelJob(j)
}

// cancelJob is the cancel rule for one job, shared by Cancel and
// BulkCancel: a scheduled or queued job ends cancelled at once, a running
// one gets CancelRequested (once), a terminal one is ErrTerminal.
func (st *state) cancelJob(j *Job) Result {
	switch j.State {
	case StateScheduled, StateQueued, StateBlocked:
		nj := st.change(j)
		nj.State = StateCancelled
		nj.FinishedAt = nj.UpdatedAt
		st.put(j, nj)
		return Result{Job: nj}
	case StateRunning:
		if j.CancelRequested {
			return Result{Job: j}
		}
		nj := st.change(j)
		nj.CancelRequested = true
		st.put(j, nj)
		return Result{Job: nj}
	default:
		return Result{Err: fmt.Errorf("%w: job %s is %s", ErrTerminal, j.ID, j.State)}
	}
}

func (st *state) retry(c *Retry) Result {
	j, ok := st.jobs[c.ID]
	if !ok {
		return Result{Err: fmt.Errorf("%w: %s", ErrNotFound, c.ID)}
	}
	return st.retryJob(j)
}

// retryJob is the retry rule for one job, shared by Retry and BulkRetry: a
// failed or cancelled job goes back to queued with one more attempt;
// other states are ErrNotRetryable.
func (st *state) retryJob(j *Job) Result {
	if j.State != StateFailed && j.State != StateCancelled {
		return Result{Err: fmt.Errorf("%w: job %s is %s", ErrNotRetryable, j.ID, j.State)}
	}
	to, err := st.retryState(j)
	if err != nil {
		return Result{Err: err}
	}
	nj := st.change(j)
	nj.State = to
	if to == StateQueued {
		nj.Seq = st.nextSeq()
	}
	nj.MaxAttempts = max(nj.MaxAttempts, nj.Attempt+1)
	nj.Error = ""
	nj.Result = nil
	nj.FinishedAt = time.Time{}
	st.put(j, nj)
	return Result{Job: nj}
}

func (st *state) setQueue(c *SetQueue) Result {
	if !ValidQueueName(c.Name) {
		return Result{Err: badName(ErrBadQueue, "queue name", c.Name)}
	}
	const all = FieldPaused | FieldConcurrency | FieldMaxAttempts | FieldRetention | FieldBackoffBase
	cfg := c.Config
	switch {
	case c.Fields&^all != 0:
		return Result{Err: fmt.Errorf("%w: unknown queue fields %#x", ErrBadQueue, uint8(c.Fields&^all))}
	case c.Fields&FieldConcurrency != 0 && cfg.Concurrency < 0:
		return Result{Err: fmt.Errorf("%w: concurrency %d is negative", ErrBadQueue, cfg.Concurrency)}
	case c.Fields&FieldMaxAttempts != 0 && cfg.MaxAttempts < 0:
		return Result{Err: fmt.Errorf("%w: max_attempts %d is negative", ErrBadQueue, cfg.MaxAttempts)}
	case c.Fields&FieldRetention != 0 && cfg.Retention < 0:
		return Result{Err: fmt.Errorf("%w: retention %s is negative", ErrBadQueue, cfg.Retention)}
	case c.Fields&FieldBackoffBase != 0 && cfg.BackoffBase < 0:
		return Result{Err: fmt.Errorf("%w: backoff base %s is negative", ErrBadQueue, cfg.BackoffBase)}
	}
	q := st.queue(c.Name)
	if c.Fields&FieldPaused != 0 {
		q.cfg.Paused = cfg.Paused
	}
	if c.Fields&FieldConcurrency != 0 {
		q.cfg.Concurrency = cfg.Concurrency
	}
	if c.Fields&FieldMaxAttempts != 0 {
		q.cfg.MaxAttempts = cfg.MaxAttempts
	}
	if c.Fields&FieldRetention != 0 {
		q.cfg.Retention = cfg.Retention
	}
	if c.Fields&FieldBackoffBase != 0 {
		q.cfg.BackoffBase = cfg.BackoffBase
	}
	return Result{}
}

// purge deletes up to Limit terminal jobs whose retention has passed,
// visiting queues in name order so every node deletes the same jobs.
func (st *state) purge(c *Purge) Result {
	limit := c.Limit
	if limit < 0 {
		return Result{Err: fmt.Errorf("%w: purge limit %d is negative", ErrBadCommand, limit)}
	}
	if limit == 0 {
		limit = DefaultPurgeLimit
	}
	names := make([]string, 0, len(st.queues))
	for name := range st.queues {
		names = append(names, name)
	}
	slices.Sort(names)
	var due []string
	for _, name := range names {
		q := st.queues[name]
		ret := q.retention()
		q.done.Ascend(func(it timeItem) bool {
			if len(due) >= limit || addNanos(it.at, ret) > st.now {
				return false
			}
			due = append(due, it.id)
			return true
		})
	}
	for _, id := range due {
		j := st.jobs[id]
		if j.UniqueKey != "" && st.unique[j.UniqueKey] == id {
			delete(st.unique, j.UniqueKey)
		}
		st.put(j, nil)
	}
	return Result{Count: len(due)}
}
