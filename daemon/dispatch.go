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
	"github.com/corral-dev/corral/plugins/runners"
	"github.com/corral-dev/corral/queue"
	"github.com/hashicorp/go-hclog"
)

const (
	// pollWait is how long a poll with free slots waits on the leader.
	pollWait = 10 * time.Second
	// notReadyPoll is how often a poll loop checks a plugin that is
	// restarting.
	notReadyPoll = 250 * time.Millisecond
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
	node string
	tags map[string]string
	// local, when set, serves calls in-process while this node leads.
	local     localLeader
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
	freed   chan struct{}          // closed (and replaced) when a slot frees

	reports chan finished
	// runners runs the jobs on reused goroutines.
	runners runners.Pool
}

// finished is an attempt that ended on this node, waiting to be reported.
// Its slot stays taken until the leader has the report, so the store never
// shows more running jobs on this node than the plugin's concurrency.
type finished struct {
	report queue.Report
	plugin string
}

// runningJob is one attempt in progress on this node.
type runningJob struct {
	lease    wireLease
	cancel   context.CancelCauseFunc
	progress progress
	// done: the plugin call returned, the report is pending; aborted: the
	// leader said stop. Both guarded by dispatcher.mu.
	done, aborted bool
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
		client:  &http.Client{Timeout: pollWait + 30*time.Second, Transport: newTransport()},
		running: map[string]*runningJob{},
		perPlug: map[string]int{},
		freed:   make(chan struct{}),
		reports: make(chan finished, 4096),
	}
}

// run announces the node's (re)start to the leader, then starts the poll,
// heartbeat and report loops and waits for ctx to end.
func (d *dispatcher) run(ctx context.Context) {
	defer d.runners.Close()
	// The restart announcement ends the leases of this node's previous run;
	// it must land before the first claim, or it would end that claim too.
	d.announce(ctx)
	var wg sync.WaitGroup
	for _, f := range []func(context.Context){d.pollLoops, d.heartbeatLoop, d.reportLoop} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(ctx)
		}()
	}
	wg.Wait()
}

// announce tells the leader this node (re)started, retrying until it gets
// through or ctx ends.
func (d *dispatcher) announce(ctx context.Context) {
	backoff := newBackoff(100*time.Millisecond, 2*time.Second)
	for ctx.Err() == nil {
		var resp heartbeatResponse
		err := d.call(ctx, "/v1/internal/heartbeat", heartbeatRequest{
			Node: d.node, Restarted: true,
		}, &resp)
		if err == nil {
			return
		}
		if ctx.Err() == nil {
			d.logger.Debug("restart announcement failed; retrying", "error", err)
			backoff.wait(ctx)
		}
	}
}

// call posts a JSON request to the leader's internal API.
func (d *dispatcher) call(ctx context.Context, path string, in, out any) error {
	if d.local != nil && d.local.isLeader() {
		return d.callLocal(ctx, in, out)
	}
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

// localLeader is the leader's side of the dispatcher protocol, used
// in-process (no HTTP, no JSON) while this node leads.
type localLeader interface {
	isLeader() bool
	poll(ctx context.Context, req pollRequest) (pollResponse, error)
	heartbeat(ctx context.Context, req heartbeatRequest) (heartbeatResponse, error)
	complete(ctx context.Context, req completeRequest) (completeResponse, error)
}

// callLocal makes a dispatcher call on this node, which leads.
func (d *dispatcher) callLocal(ctx context.Context, in, out any) error {
	var err error
	switch req := in.(type) {
	case pollRequest:
		*out.(*pollResponse), err = d.local.poll(ctx, req)
	case heartbeatRequest:
		*out.(*heartbeatResponse), err = d.local.heartbeat(ctx, req)
	case completeRequest:
		*out.(*completeResponse), err = d.local.complete(ctx, req)
	default:
		err = fmt.Errorf("internal error: no local call for %T", in)
	}
	return err
}

// slotsOf returns a plugin's free slots and whether it is ready.
func (d *dispatcher) slotsOf(name string) (free int, ready bool) {
	for _, p := range d.plugins.Plugins() {
		if p.Name != name {
			continue
		}
		d.mu.Lock()
		defer d.mu.Unlock()
		return p.Concurrency - d.perPlug[name], p.Status == host.StateReady
	}
	return 0, false
}

// leases lists the leases this node holds. Polls leave out the ones
// already aborted, so an abort is not answered again and again while the
// attempt winds down; heartbeats keep them alive until the report lands.
func (d *dispatcher) leases(withAborted bool) []queue.LeaseRef {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]queue.LeaseRef, 0, len(d.running))
	for id, rj := range d.running {
		if withAborted || !rj.aborted {
			out = append(out, queue.LeaseRef{ID: id, Token: rj.lease.Token})
		}
	}
	return out
}

// changed returns a channel closed at the next freed slot.
func (d *dispatcher) changed() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.freed
}

// pollLoops runs one poll loop per plugin that can run jobs, and one that
// only carries aborts. Per-plugin polls keep a busy plugin from holding up
// another: a poll only ever claims for the slots it names, and a plugin
// with no free slot does not poll until one frees.
func (d *dispatcher) pollLoops(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { d.pollLoop(ctx, "") })
	for _, p := range d.plugins.Plugins() {
		if p.Status == host.StateFailed || p.Status == host.StateSkipped {
			continue
		}
		wg.Go(func() { d.pollLoop(ctx, p.Name) })
	}
	wg.Wait()
}

// pollLoop long-polls the leader for work for one plugin, or, with plugin
// "", only for aborts of running attempts (a claim-less poll).
func (d *dispatcher) pollLoop(ctx context.Context, plugin string) {
	backoff := newBackoff(100*time.Millisecond, 2*time.Second)
	for ctx.Err() == nil {
		var slots map[string]int
		if plugin != "" {
			changed := d.changed()
			free, ready := d.slotsOf(plugin)
			if !ready || free <= 0 {
				// Not ready (restarting) or full: wait for a slot or the
				// plugin to come back.
				select {
				case <-changed:
				case <-time.After(notReadyPoll):
				case <-ctx.Done():
				}
				continue
			}
			slots = map[string]int{plugin: free}
		}
		var resp pollResponse
		err := d.call(ctx, "/v1/internal/poll", pollRequest{
			Node: d.node, Tags: d.tags, Slots: slots, Running: d.leases(false),
			WaitMS: pollWait.Milliseconds(),
		}, &resp)
		if err != nil {
			if ctx.Err() == nil {
				d.logger.Debug("poll failed; retrying", "plugin", plugin, "error", err)
				backoff.wait(ctx)
			}
			continue
		}
		backoff.reset()
		d.abort(resp.Abort)
		for _, l := range resp.Leases {
			d.start(ctx, l)
		}
	}
}

// abort cancels the running attempts the leader says to stop.
func (d *dispatcher) abort(aborts []queue.Abort) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, a := range aborts {
		if rj, ok := d.running[a.ID]; ok && rj.lease.Token == a.Token {
			rj.aborted = true
			rj.cancel(errAborted{reason: a.Reason})
		}
	}
}

// start runs one leased job in its plugin.
func (d *dispatcher) start(ctx context.Context, l wireLease) {
	jctx, cancel := context.WithCancelCause(ctx)
	rj := &runningJob{lease: l, cancel: cancel}
	d.mu.Lock()
	if old, ok := d.running[l.ID]; ok {
		// A new lease on a job this node still runs under an older token
		// (the old lease was lost): the old attempt must stop.
		old.cancel(errAborted{reason: "lease lost: a newer attempt owns the job"})
	}
	d.running[l.ID] = rj
	d.perPlug[l.Plugin]++
	d.mu.Unlock()
	d.runners.Run(func() {
		defer cancel(nil)
		report := d.execute(jctx, rj)
		d.mu.Lock()
		rj.done = true
		d.mu.Unlock()
		f := finished{report: report, plugin: l.Plugin}
		if ctx.Err() == nil {
			// The lease stays in the heartbeats until the report is in.
			select {
			case d.reports <- f:
				return
			case <-ctx.Done():
			}
		}
		// Shutting down: the lease is ended by FailNode on leave or
		// expires; there may be no leader to take a report now.
		d.releaseSlots([]finished{f})
	})
}

// releaseSlots forgets reported (or abandoned) attempts and frees their
// plugin slots.
func (d *dispatcher) releaseSlots(batch []finished) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, f := range batch {
		d.perPlug[f.plugin]--
		if rj, ok := d.running[f.report.ID]; ok && rj.lease.Token == f.report.Token {
			delete(d.running, f.report.ID)
		}
	}
	close(d.freed)
	d.freed = make(chan struct{})
}

// execute runs the attempt and turns its outcome into a report.
func (d *dispatcher) execute(ctx context.Context, rj *runningJob) queue.Report {
	l := rj.lease
	rep := queue.Report{ID: l.ID, Token: l.Token, Node: d.node}
	sink := &jobReporter{logs: d.logs, id: l.ID, attempt: l.Attempt, logger: d.logger, progress: &rj.progress}
	result, err := d.plugins.Run(ctx, l.Plugin, host.RunRequest{
		JobID: l.ID, Attempt: l.Attempt, Queue: l.Queue, Payload: l.Payload, Timeout: l.Timeout,
	}, sink)
	sink.close()
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
	var batch []finished
	for {
		if len(batch) == 0 {
			select {
			case f := <-d.reports:
				batch = append(batch, f)
			case <-ctx.Done():
				return
			}
		}
	gather:
		for len(batch) < maxReportBatch {
			select {
			case f := <-d.reports:
				batch = append(batch, f)
			default:
				break gather
			}
		}
		reports := make([]queue.Report, len(batch))
		for i, f := range batch {
			reports[i] = f.report
		}
		var resp completeResponse
		if err := d.call(ctx, "/v1/internal/complete", completeRequest{Node: d.node, Reports: reports}, &resp); err != nil {
			if ctx.Err() != nil {
				return
			}
			d.logger.Debug("report failed; retrying", "error", err, "reports", len(batch))
			backoff.wait(ctx)
			continue
		}
		backoff.reset()
		for i, e := range resp.Errors {
			if e != "" && i < len(reports) {
				// A rejected report is normal after a lease was lost: the
				// fencing token kept a stale attempt from overwriting.
				d.logger.Info("report rejected", "job", reports[i].ID, "token", reports[i].Token, "reason", e)
			}
		}
		d.releaseSlots(batch)
		batch = nil
	}
}

// heartbeatLoop renews this node's leases every third of the lease TTL.
func (d *dispatcher) heartbeatLoop(ctx context.Context) {
	interval := d.leaseTTL / 3
	backoff := newBackoff(100*time.Millisecond, 2*time.Second)
	for ctx.Err() == nil {
		if leases := d.leases(true); len(leases) > 0 {
			var resp heartbeatResponse
			err := d.call(ctx, "/v1/internal/heartbeat", heartbeatRequest{
				Node: d.node, Leases: leases,
			}, &resp)
			if err != nil {
				if ctx.Err() == nil {
					d.logger.Debug("heartbeat failed; retrying", "error", err)
					backoff.wait(ctx)
				}
				continue
			}
			backoff.reset()
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

// runs reports whether this node is running the given attempt of a job
// (its plugin call has not returned yet).
func (d *dispatcher) runs(id string, attempt int) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	rj, ok := d.running[id]
	return ok && rj.lease.Attempt == attempt && !rj.done
}

// jobReporter receives a running job's logs and progress from the plugin.
// The plugin host calls it from one goroutine. The log file is created at
// the first line, so jobs that print nothing cost no file system work.
type jobReporter struct {
	logs     *jobLogs
	id       string
	attempt  int
	logger   hclog.Logger
	log      io.WriteCloser
	failed   bool
	progress *progress
}

// Log appends one line to the attempt's log file.
func (r *jobReporter) Log(stream, line string) {
	if r.log == nil && !r.failed {
		var err error
		if r.log, err = r.logs.create(r.id, r.attempt); err != nil {
			r.failed = true
			r.logger.Warn("cannot open job log", "job", r.id, "error", err)
		}
	}
	if r.log != nil {
		_, _ = io.WriteString(r.log, line+"\n")
	}
}

// close closes the log file, if one was made.
func (r *jobReporter) close() {
	if r.log != nil {
		_ = r.log.Close()
	}
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
