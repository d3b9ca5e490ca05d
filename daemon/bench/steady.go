package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/corral-dev/corral/daemon/api"
)

const (
	// drainTimeout bounds how long workers may take, after the window, to
	// see their last jobs to the end.
	drainTimeout = 30 * time.Second
	// blockingWait is the wait of each blocking query on a job.
	blockingWait = 30 * time.Second
	// errorPause slows a worker down after a failed request.
	errorPause = 10 * time.Millisecond
	// notFoundPause is the pause before asking again for a job the node
	// has not applied yet.
	notFoundPause = time.Millisecond
	// notFoundLimit is how long a node may keep answering 404 for a job
	// it acknowledged before follow gives up.
	notFoundLimit = 10 * time.Second
)

// steadyStats are the counters the steady workers share.
type steadyStats struct {
	from, to time.Time // the measured window
	e2e      recorder
	submit   recorder
	done     atomic.Int64 // jobs that succeeded within the window
	total    atomic.Int64 // jobs that succeeded at any time
	errors   atomic.Int64
	notFound atomic.Int64 // reads that raced ahead of the node's apply
	firstErr atomic.Pointer[error]
}

// fail counts err and keeps the first one for the log.
func (s *steadyStats) fail(err error) {
	s.errors.Add(1)
	s.firstErr.CompareAndSwap(nil, &err)
}

// steady runs the closed loop: Inflight workers each submit one job and
// follow it to its end, for Warmup then Duration. Jobs that succeed inside
// the measured window are counted; workers then finish the job in hand so
// the run leaves nothing behind.
func (r *runner) steady(ctx context.Context) (*Result, error) {
	now := time.Now()
	st := &steadyStats{from: now.Add(r.cfg.Warmup)}
	st.to = st.from.Add(r.cfg.Duration)
	stop := make(chan struct{})
	workCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for w := range r.cfg.Inflight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.worker(workCtx, w, st, stop)
		}()
	}
	finished := make(chan struct{})
	go func() {
		wg.Wait()
		close(finished)
	}()

	meter := cpuMeter{read: r.cpu}
	from := time.NewTimer(time.Until(st.from))
	defer from.Stop()
	end := time.NewTimer(time.Until(st.to))
	defer end.Stop()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var interrupted error
	for running := true; running; {
		select {
		case <-ctx.Done():
			interrupted = ctx.Err()
			running = false
		case <-from.C:
			meter.begin()
		case <-end.C:
			running = false
		case t := <-tick.C:
			phase := "warmup"
			if t.After(st.from) {
				phase = fmt.Sprintf("%.0f jobs/s", float64(st.done.Load())/t.Sub(st.from).Seconds())
			}
			r.progress("steady: %d jobs done, %d errors, %s", st.total.Load(), st.errors.Load(), phase)
		}
	}
	close(stop)
	meter.end()
	r.endProgress()
	drain := time.NewTimer(drainTimeout)
	defer drain.Stop()
	select {
	case <-finished:
	case <-drain.C:
		r.logger.Warn("workers still following jobs after the window; giving up on them", "after", drainTimeout)
		cancel()
		<-finished
	}
	if interrupted != nil {
		return nil, fmt.Errorf("steady run interrupted: %w", interrupted)
	}
	if p := st.firstErr.Load(); p != nil {
		r.logger.Warn("requests or jobs failed", "errors", st.errors.Load(), "first", *p)
	}
	if n := st.notFound.Load(); n > 0 {
		r.logger.Debug("job reads answered 404 before the node applied the submit", "count", n)
	}
	res := &Result{
		Jobs:     int(st.done.Load()),
		Seconds:  r.cfg.Duration.Seconds(),
		E2E:      st.e2e.summary(),
		Submit:   st.submit.summary(),
		Errors:   int(st.errors.Load()),
		Inflight: r.cfg.Inflight,
	}
	res.JobsPerSec = float64(res.Jobs) / res.Seconds
	meter.fill(res)
	return res, nil
}

// worker is one closed-loop client: it submits a job, follows it to its
// end on the same node, and starts the next until stop is closed. Worker w
// starts on node w and moves one node further with every job, so submits
// spread over all nodes.
func (r *runner) worker(ctx context.Context, w int, st *steadyStats, stop <-chan struct{}) {
	clients, err := r.newClients()
	if err != nil {
		st.fail(err) // not reached: Run built the same clients already
		return
	}
	req := r.job()
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		cl := clients[(w+i)%len(clients)]
		t0 := time.Now()
		// Submit-and-wait: the answer comes when the job has ended.
		resp, err := cl.SubmitAndWait(ctx, req, blockingWait)
		ack := time.Now()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			st.fail(fmt.Errorf("submit to %s: %w", cl.Address(), err))
			pause(ctx, errorPause)
			continue
		}
		var state string
		if resp.Job != nil && terminal(resp.Job.State) {
			state = resp.Job.State
		} else {
			state, err = r.follow(ctx, cl, resp.ID, resp.Index, &st.notFound)
		}
		end := time.Now()
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return
			}
			st.fail(fmt.Errorf("follow job %s on %s: %w", resp.ID, cl.Address(), err))
			continue
		case state != "succeeded":
			st.fail(fmt.Errorf("job %s ended %s", resp.ID, state))
			continue
		}
		st.total.Add(1)
		if !end.Before(st.from) && !end.After(st.to) {
			st.done.Add(1)
			st.submit.add(ack.Sub(t0))
			st.e2e.add(end.Sub(t0))
		}
	}
}

// follow waits with blocking queries until job id ends and returns its
// final state. index is the submit's raft index. A node that has not yet
// applied the submit answers 404; follow asks again (counted in notFound).
func (r *runner) follow(ctx context.Context, cl *api.Client, id string, index uint64, notFound *atomic.Int64) (string, error) {
	var missingSince time.Time
	for {
		job, next, err := cl.WaitJob(ctx, id, index, blockingWait)
		if errors.Is(err, api.ErrNotFound) {
			notFound.Add(1)
			if missingSince.IsZero() {
				missingSince = time.Now()
			} else if time.Since(missingSince) > notFoundLimit {
				return "", fmt.Errorf("job still unknown to the node after %s: %w", notFoundLimit, err)
			}
			if !pause(ctx, notFoundPause) {
				return "", ctx.Err()
			}
			continue
		}
		if err != nil {
			return "", err
		}
		if terminal(job.State) {
			return job.State, nil
		}
		if next > index {
			index = next
		}
	}
}

// terminal reports whether a job state is final.
func terminal(state string) bool {
	return state == "succeeded" || state == "failed" || state == "cancelled"
}

// pause waits d or until ctx ends; it reports whether ctx is still live.
func pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
