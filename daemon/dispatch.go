package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/corral-dev/corral/plugins/host"
	"github.com/corral-dev/corral/queue"
	"github.com/hashicorp/go-hclog"
)

const (
	// pollWait is how long a poll with free slots waits on the leader.
	pollWait = 10 * time.Second
	// pollWaitFull is the poll wait when every slot is busy: short, so
	// freed slots are offered soon, but it still carries aborts.
	pollWaitFull = time.Second
	// maxReportBatch caps reports per complete call.
	maxReportBatch = 1024
)

// pluginRunner is what the dispatcher needs from the plugin host.
type pluginRunner interface {
	Plugins() []host.Status
	Run(ctx context.Context, plugin string, req host.RunRequest, r host.Reporter) ([]byte, error)
}

// dispatcher runs on every node: it asks the leader for work for its free
// plugin slots, runs each job in its plugin, keeps the leases alive, and
// reports outcomes in batches.
type dispatcher struct {
	node      string
	tags      map[string]string
	leaseTTL  time.Duration
	maxResult int
	plugins   pluginRunner
	leader    func(ctx context.Context) (string, error)
	logs      *jobLogs
	logger    hclog.Logger
	client    *http.Client

	mu      sync.Mutex
	running map[string]*runningJob // by job ID
	perPlug map[string]int         // running count per plugin
	freed   chan struct{}          // a slot was freed (cap 1)

	reports chan queue.Report
}

// runningJob is one attempt in progress on this node.
type runningJob struct {
	lease    wireLease
	cancel   context.CancelCauseFunc
	progress progress
}

type progress struct {
	mu      sync.Mutex
	set     bool
	percent float64
	message string
}

// errAborted is the cancel cause when the leader says to stop.
type errAborted struct{ reason string }

func (e errAborted) Error() string { return "aborted: " + e.reason }

func newDispatcher(node string, tags map[string]string, leaseTTL time.Duration, maxResult int,
	plugins pluginRunner, leader func(context.Context) (string, error), logs *jobLogs, logger hclog.Logger) *dispatcher {
	return &dispatcher{
		node: node, tags: tags, leaseTTL: leaseTTL, maxResult: maxResult,
		plugins: plugins, leader: leader, logs: logs, logger: logger,
		client:  &http.Client{Timeout: pollWait + 30*time.Second},
		running: map[string]*runningJob{},
		perPlug: map[string]int{},
		freed:   make(chan struct{}, 1),
		reports: make(chan queue.Report, 4096),
	}
}

// run starts the poll, heartbeat and report loops and waits for ctx to end.
func (d *dispatcher) run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, f := range []func(context.Context){d.pollLoop, d.heartbeatLoop, d.reportLoop} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(ctx)
		}()
	}
	wg.Wait()
}

// call posts a JSON request to the leader's internal API.
func (d *dispatcher) call(ctx context.Context, path string, in, out any) error {
	addr, err := d.leader(ctx)
	if err != nil {
		return err
	}
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := d.client.Do(req)
	if err != nil {
		return fmt.Errorf("%s on leader %s: %w", path, addr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("%s on leader %s: %s: %s", path, addr, resp.Status, bytes.TrimSpace(msg))
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// freeSlots returns the free capacity per ready plugin.
func (d *dispatcher) freeSlots() map[string]int {
	d.mu.Lock()
	defer d.mu.Unlock()
	free := map[string]int{}
	for _, p := range d.plugins.Plugins() {
		if p.Status != host.StateReady {
			continue
		}
		if n := p.Concurrency - d.perPlug[p.Name]; n > 0 {
			free[p.Name] = n
		}
	}
	return free
}

// leases lists the leases this node holds.
func (d *dispatcher) leases() []queue.LeaseRef {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]queue.LeaseRef, 0, len(d.running))
	for id, rj := range d.running {
		out = append(out, queue.LeaseRef{ID: id, Token: rj.lease.Token})
	}
	return out
}

// pollLoop long-polls the leader for work.
func (d *dispatcher) pollLoop(ctx context.Context) {
	backoff := newBackoff(100*time.Millisecond, 2*time.Second)
	for ctx.Err() == nil {
		free := d.freeSlots()
		wait := pollWait
		if len(free) == 0 {
			wait = pollWaitFull
		}
		var resp pollResponse
		err := d.call(ctx, "/v1/internal/poll", pollRequest{
			Node: d.node, Tags: d.tags, Slots: free, Running: d.leases(),
			WaitMS: wait.Milliseconds(), LeaseTTL: d.leaseTTL.Milliseconds(),
		}, &resp)
		if err != nil {
			if ctx.Err() == nil {
				d.logger.Debug("poll failed; retrying", "error", err)
				backoff.wait(ctx)
			}
			continue
		}
		backoff.reset()
		d.abort(resp.Abort)
		for _, l := range resp.Leases {
			d.start(ctx, l)
		}
		if len(free) == 0 && len(resp.Leases) == 0 {
			// Every slot is busy: wait for one to free (or the short poll
			// to bring aborts) before asking again.
			select {
			case <-d.freed:
			case <-time.After(pollWaitFull):
			case <-ctx.Done():
			}
		}
	}
}

// abort cancels the running attempts the leader says to stop.
func (d *dispatcher) abort(aborts []queue.Abort) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, a := range aborts {
		if rj, ok := d.running[a.ID]; ok && rj.lease.Token == a.Token {
			rj.cancel(errAborted{reason: a.Reason})
		}
	}
}

// start runs one leased job in its plugin.
func (d *dispatcher) start(ctx context.Context, l wireLease) {
	jctx, cancel := context.WithCancelCause(ctx)
	rj := &runningJob{lease: l, cancel: cancel}
	d.mu.Lock()
	d.running[l.ID] = rj
	d.perPlug[l.Plugin]++
	d.mu.Unlock()
	go func() {
		defer cancel(nil)
		report := d.execute(jctx, rj)
		d.mu.Lock()
		delete(d.running, l.ID)
		d.perPlug[l.Plugin]--
		d.mu.Unlock()
		select {
		case d.freed <- struct{}{}:
		default:
		}
		if ctx.Err() != nil {
			// Shutting down: the lease is ended by FailNode on leave or
			// expires; a report now could race the new owner harmlessly,
			// but there may be no leader to take it.
			return
		}
		d.reports <- report
	}()
}

// execute runs the attempt and turns its outcome into a report.
func (d *dispatcher) execute(ctx context.Context, rj *runningJob) queue.Report {
	l := rj.lease
	rep := queue.Report{ID: l.ID, Token: l.Token, Node: d.node}
	logw, err := d.logs.create(l.ID, l.Attempt)
	if err != nil {
		d.logger.Warn("cannot open job log", "job", l.ID, "error", err)
	}
	sink := &jobReporter{log: logw, progress: &rj.progress}
	result, err := d.plugins.Run(ctx, l.Plugin, host.RunRequest{
		JobID: l.ID, Attempt: l.Attempt, Queue: l.Queue, Payload: l.Payload, Timeout: l.Timeout,
	}, sink)
	if logw != nil {
		_ = logw.Close()
	}
	var jerr *host.JobError
	var aborted errAborted
	switch {
	case err == nil && d.maxResult > 0 && len(result) > d.maxResult:
		rep.Outcome = queue.OutcomeFailed
		rep.Error = fmt.Sprintf("result of %d bytes exceeds the %d-byte limit (limits.max_result_bytes)", len(result), d.maxResult)
		rep.NonRetryable = true
	case err == nil:
		rep.Outcome, rep.Result = queue.OutcomeSucceeded, result
	case errors.As(context.Cause(ctx), &aborted) && aborted.reason == "cancelled":
		rep.Outcome, rep.Error = queue.OutcomeCancelled, "cancelled"
	case errors.As(err, &jerr):
		rep.Outcome, rep.Error, rep.NonRetryable = queue.OutcomeFailed, jerr.Message, jerr.NonRetryable
	default:
		rep.Outcome, rep.Error = queue.OutcomeFailed, err.Error()
	}
	return rep
}

// reportLoop sends finished attempts to the leader, batching whatever
// accumulated while the previous call was in flight.
func (d *dispatcher) reportLoop(ctx context.Context) {
	backoff := newBackoff(100*time.Millisecond, 2*time.Second)
	var batch []queue.Report
	for {
		if len(batch) == 0 {
			select {
			case r := <-d.reports:
				batch = append(batch, r)
			case <-ctx.Done():
				return
			}
		}
	gather:
		for len(batch) < maxReportBatch {
			select {
			case r := <-d.reports:
				batch = append(batch, r)
			default:
				break gather
			}
		}
		var resp completeResponse
		if err := d.call(ctx, "/v1/internal/complete", completeRequest{Node: d.node, Reports: batch}, &resp); err != nil {
			if ctx.Err() != nil {
				return
			}
			d.logger.Debug("report failed; retrying", "error", err, "reports", len(batch))
			backoff.wait(ctx)
			continue
		}
		backoff.reset()
		for i, e := range resp.Errors {
			if e != "" {
				// A rejected report is normal after a lease was lost: the
				// fencing token kept a stale attempt from overwriting.
				d.logger.Info("report rejected", "job", batch[i].ID, "token", batch[i].Token, "reason", e)
			}
		}
		batch = batch[:0]
	}
}

// heartbeatLoop renews this node's leases every third of the lease TTL.
// The first heartbeat tells the leader the node (re)started, so leases of a
// previous run of this node are ended at once instead of expiring.
func (d *dispatcher) heartbeatLoop(ctx context.Context) {
	restarted := true
	interval := d.leaseTTL / 3
	backoff := newBackoff(100*time.Millisecond, 2*time.Second)
	for ctx.Err() == nil {
		leases := d.leases()
		if len(leases) > 0 || restarted {
			var resp heartbeatResponse
			err := d.call(ctx, "/v1/internal/heartbeat", heartbeatRequest{
				Node: d.node, Leases: leases, LeaseTTL: d.leaseTTL.Milliseconds(), Restarted: restarted,
			}, &resp)
			if err != nil {
				if ctx.Err() == nil {
					d.logger.Debug("heartbeat failed; retrying", "error", err)
					backoff.wait(ctx)
				}
				continue
			}
			backoff.reset()
			restarted = false
			d.abort(resp.Abort)
		}
		select {
		case <-time.After(interval):
		case <-ctx.Done():
		}
	}
}

// progressOf returns a running job's last progress on this node.
func (d *dispatcher) progressOf(id string) (percent float64, message string, ok bool) {
	d.mu.Lock()
	rj, found := d.running[id]
	d.mu.Unlock()
	if !found {
		return 0, "", false
	}
	rj.progress.mu.Lock()
	defer rj.progress.mu.Unlock()
	return rj.progress.percent, rj.progress.message, rj.progress.set
}

// jobReporter receives a running job's logs and progress from the plugin.
type jobReporter struct {
	log      io.Writer
	progress *progress
}

// Log appends one line to the attempt's log file.
func (r *jobReporter) Log(stream, line string) {
	if r.log == nil {
		return
	}
	_, _ = io.WriteString(r.log, line+"\n")
}

// Progress records the latest progress.
func (r *jobReporter) Progress(percent float64, msg string) {
	r.progress.mu.Lock()
	r.progress.set, r.progress.percent, r.progress.message = true, percent, msg
	r.progress.mu.Unlock()
}

// backoff is a capped exponential retry delay.
type backoff struct {
	min, max, cur time.Duration
}

func newBackoff(min, max time.Duration) *backoff { return &backoff{min: min, max: max, cur: min} }

func (b *backoff) reset() { b.cur = b.min }

func (b *backoff) wait(ctx context.Context) {
	select {
	case <-time.After(b.cur):
	case <-ctx.Done():
	}
	b.cur = min(b.cur*2, b.max)
}
