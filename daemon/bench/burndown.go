package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/corral-dev/corral/daemon/api"
)

const (
	// countEvery is the pause between queue count polls while burning
	// down.
	countEvery = 20 * time.Millisecond
	// verifyEvery spaces out allEnded's job listings.
	verifyEvery = 500 * time.Millisecond
)

// burndownState is what the submitters share.
type burndownState struct {
	submitted atomic.Int64 // jobs acknowledged
	rejected  atomic.Int64 // jobs whose submit failed
	lastAck   atomic.Int64 // UnixNano of the latest batch ack
	latency   recorder     // per batch
	mu        sync.Mutex
	ids       map[string]struct{}
	firstErr  error
}

// burndown enqueues Jobs jobs in batches of Batch from Submitters
// goroutines (batch k goes to node k mod N), then waits until all have
// ended. The clock runs from the first submit to the count poll that saw
// the last completion.
func (r *runner) burndown(ctx context.Context) (*Result, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	mon := r.monitor(ctx)
	base, err := terminalCount(ctx, mon, r.cfg.Queue)
	if err != nil {
		return nil, fmt.Errorf("read queue counts: %w", err)
	}
	reqs := make([]api.JobRequest, r.cfg.Batch)
	for i := range reqs {
		reqs[i] = r.job()
	}
	batches := (r.cfg.Jobs + r.cfg.Batch - 1) / r.cfg.Batch
	st := &burndownState{ids: make(map[string]struct{}, r.cfg.Jobs)}
	sets := make([][]*api.Client, min(r.cfg.Submitters, batches))
	for i := range sets {
		if sets[i], err = r.newClients(); err != nil {
			return nil, err
		}
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	submitted := make(chan struct{})
	meter := cpuMeter{read: r.cpu}
	meter.begin()
	start := time.Now()
	for _, clients := range sets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := int(next.Add(1) - 1); b < batches && ctx.Err() == nil; b = int(next.Add(1) - 1) {
				n := min(r.cfg.Batch, r.cfg.Jobs-b*r.cfg.Batch)
				r.submitBatch(ctx, clients[b%len(clients)], reqs[:n], st)
			}
		}()
	}
	go func() {
		wg.Wait()
		close(submitted)
	}()

	doneAt, err := r.waitBurndown(ctx, mon, base, st, submitted)
	meter.end()
	r.endProgress()
	cancel() // stops the submitters when the wait gave up early
	<-submitted
	if st.firstErr != nil {
		r.logger.Warn("submits failed", "jobs", st.rejected.Load(), "first", st.firstErr)
	}
	if err != nil {
		return nil, err
	}

	fetchCtx, fetchCancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer fetchCancel()
	e2e, ok, err := r.finishedLatencies(fetchCtx, mon, st.ids)
	if err != nil {
		return nil, fmt.Errorf("read finished jobs: %w", err)
	}
	elapsed := doneAt.Sub(start)
	res := &Result{
		Jobs:    ok,
		Seconds: elapsed.Seconds(),
		E2E:     Summarize(e2e),
		Submit:  st.latency.summary(),
		Errors:  int(st.rejected.Load()) + len(st.ids) - ok,
		Batch:   r.cfg.Batch,
	}
	res.JobsPerSec = float64(ok) / elapsed.Seconds()
	meter.fill(res)
	if acked := time.Unix(0, st.lastAck.Load()); acked.After(start) {
		res.SubmitPerSec = float64(st.submitted.Load()) / acked.Sub(start).Seconds()
	}
	return res, nil
}

// submitBatch submits one batch and records its latency and job IDs.
func (r *runner) submitBatch(ctx context.Context, cl *api.Client, reqs []api.JobRequest, st *burndownState) {
	t0 := time.Now()
	resp, err := cl.SubmitBatch(ctx, reqs)
	now := time.Now()
	if err == nil && len(resp.Jobs) != len(reqs) {
		err = fmt.Errorf("answer names %d jobs for %d submitted", len(resp.Jobs), len(reqs))
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if err != nil {
		st.rejected.Add(int64(len(reqs)))
		if st.firstErr == nil && ctx.Err() == nil {
			st.firstErr = fmt.Errorf("submit batch to %s: %w", cl.Address(), err)
		}
		return
	}
	st.latency.add(now.Sub(t0))
	for _, j := range resp.Jobs {
		if j.Error != "" || j.ID == "" {
			st.rejected.Add(1)
			if st.firstErr == nil {
				st.firstErr = fmt.Errorf("submit batch to %s: job rejected: %s", cl.Address(), j.Error)
			}
			continue
		}
		st.ids[j.ID] = struct{}{}
		st.submitted.Add(1)
	}
	if n := now.UnixNano(); n > st.lastAck.Load() {
		st.lastAck.Store(n)
	}
}

// waitBurndown polls the queue's counts until every acknowledged job has
// ended (after all submits returned) and returns when the poll saw it.
func (r *runner) waitBurndown(ctx context.Context, mon *api.Client, base int, st *burndownState, submitted <-chan struct{}) (time.Time, error) {
	poll := time.NewTicker(countEvery)
	defer poll.Stop()
	lastDraw, lastDone := time.Now(), 0
	allSubmitted := false
	var lastVerify time.Time
	for {
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("%w: %w", ErrIncomplete, ctx.Err())
		case <-submitted:
			allSubmitted = true
			submitted = nil // seen; don't select it again
			continue
		case <-poll.C:
		}
		n, err := terminalCount(ctx, mon, r.cfg.Queue)
		if err != nil {
			if ctx.Err() != nil {
				return time.Time{}, fmt.Errorf("%w: %w", ErrIncomplete, ctx.Err())
			}
			r.logger.Warn("read queue counts", "error", err)
			continue
		}
		now, done := time.Now(), n-base
		if allSubmitted && done >= int(st.submitted.Load()) && now.Sub(lastVerify) >= verifyEvery {
			if r.allEnded(ctx, mon, st) {
				return now, nil
			}
			lastVerify = now
		}
		if d := now.Sub(lastDraw); d >= time.Second {
			r.progress("burndown: %d/%d submitted, %d done, %.0f jobs/s",
				st.submitted.Load(), r.cfg.Jobs, done, float64(done-lastDone)/d.Seconds())
			lastDraw, lastDone = now, done
		}
	}
}

// allEnded double-checks a burndown whose counts say it is done. The
// counts cannot tell this run's jobs from others in the queue, and a
// failed batch submit may still have enqueued its jobs (a forward that
// failed after the leader committed), so when any submit failed it lists
// the queue's unfinished jobs and looks for ours among them.
func (r *runner) allEnded(ctx context.Context, mon *api.Client, st *burndownState) bool {
	if st.rejected.Load() == 0 {
		return true
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, state := range []string{"scheduled", "queued", "running"} {
		list, err := mon.Jobs(ctx, r.cfg.Queue, state)
		if err != nil {
			r.logger.Warn("list unfinished jobs", "state", state, "error", err)
			return false
		}
		for _, j := range list.Jobs {
			if _, ok := st.ids[j.ID]; ok {
				return false
			}
		}
	}
	return true
}

// finishedLatencies lists the queue's succeeded jobs and returns the
// created → finished latency of those in ids, and how many there were.
func (r *runner) finishedLatencies(ctx context.Context, mon *api.Client, ids map[string]struct{}) ([]time.Duration, int, error) {
	list, err := mon.Jobs(ctx, r.cfg.Queue, "succeeded")
	if err != nil {
		return nil, 0, err
	}
	out := make([]time.Duration, 0, len(ids))
	for _, j := range list.Jobs {
		if _, ok := ids[j.ID]; ok {
			out = append(out, j.FinishedAt.Sub(j.CreatedAt))
		}
	}
	return out, len(out), nil
}

// monitor returns a client for the leader, whose counts are the freshest,
// or for the first node when the leader's address is unknown.
func (r *runner) monitor(ctx context.Context) *api.Client {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	l, err := r.clients[0].Leader(ctx)
	if err != nil || l.HTTP == "" {
		return r.clients[0]
	}
	cl, err := api.NewClient(l.HTTP, r.cfg.Token)
	if err != nil {
		return r.clients[0]
	}
	return cl
}

// terminalCount returns the number of the queue's jobs that have ended
// (0 for a queue that does not exist yet).
func terminalCount(ctx context.Context, cl *api.Client, name string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	qs, err := cl.Queues(ctx)
	if err != nil {
		return 0, err
	}
	for _, q := range qs.Queues {
		if q.Name == name {
			return q.Counts["succeeded"] + q.Counts["failed"] + q.Counts["cancelled"], nil
		}
	}
	return 0, nil
}
