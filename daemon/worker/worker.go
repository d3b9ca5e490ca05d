// Package worker runs jobs on this node: it keeps one dispatch stream open
// to the leader, announces free plugin slots, runs the leases the leader
// pushes in their plugins, renews them, and reports outcomes in batches.
// It also keeps job output logs. It never imports the server: it reaches
// the leader through the Leader it is given (rpc, remote or in-process).
package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"sync"
	"time"

	"github.com/corral-dev/corral/daemon/rpc"
	"github.com/corral-dev/corral/plugins/host"
	"github.com/corral-dev/corral/plugins/runners"
	"github.com/corral-dev/corral/queue"
	"github.com/hashicorp/go-hclog"
)

// maxReportBatch caps the reports of one message.
const maxReportBatch = rpc.MaxReportsPerMessage

// pluginRecheck is how often the worker notices a plugin that became
// ready or unavailable (a restart) and announces its slots again (a
// variable: tests announce far more often, to meet every interleaving).
var pluginRecheck = 250 * time.Millisecond

// Plugins is what the worker needs from the plugin host.
type Plugins interface {
	Plugins() []host.Status
	Run(ctx context.Context, plugin string, req host.RunRequest, r host.Reporter) ([]byte, error)
}

// Stream is the worker's end of a dispatch stream. Send and Recv are each
// used by one goroutine; Close ends the stream.
type Stream interface {
	Send(v any) error
	Recv(v any) error
	Close() error
}

// Leader opens a dispatch stream to the current leader. The stream must
// end as soon as that node is known to no longer lead.
type Leader interface {
	OpenDispatch(ctx context.Context) (Stream, error)
}

// Config configures a Worker.
type Config struct {
	// Node is this node's name.
	Node string
	// Tags are this node's tags.
	Tags map[string]string
	// LeaseTTL is the cluster's lease TTL: leases are renewed every third.
	LeaseTTL time.Duration
	// MaxResult bounds a result's size in bytes (0: no bound); a bigger
	// result fails the job, non-retryably.
	MaxResult int
	// Logger is the worker's logger.
	Logger hclog.Logger
}

// Worker runs this node's share of the jobs.
type Worker struct {
	cfg     Config
	plugins Plugins
	leader  Leader
	logs    *Logs
	logger  hclog.Logger

	mu      sync.Mutex
	running map[string]*runningJob // by job ID
	perPlug map[string]int         // slots taken per plugin (running + unacknowledged)
	freed   chan struct{}          // closed (and replaced) when slots change
	// pending are finished attempts not yet acknowledged by a leader;
	// unsent are those not yet sent on the current stream (all of them
	// when a stream starts).
	pending map[queue.LeaseRef]finished
	unsent  []queue.Report

	finished chan finished
	// runCtx is Run's context: jobs end with it, not with a stream.
	runCtx context.Context
	// runners runs the jobs on reused goroutines.
	runners runners.Pool
}

// finished is an attempt that ended on this node.
type finished struct {
	report queue.Report
	plugin string
}

// runningJob is one attempt in progress on this node.
type runningJob struct {
	lease    rpc.Lease
	cancel   context.CancelCauseFunc
	progress progress
	// done: the plugin call returned, the report is pending; aborted: the
	// leader said stop. Both guarded by Worker.mu.
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

// New builds a worker; nothing runs until Run.
func New(cfg Config, plugins Plugins, leader Leader, logs *Logs) *Worker {
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = queue.DefaultLeaseTTL
	}
	return &Worker{
		cfg: cfg, plugins: plugins, leader: leader, logs: logs, logger: cfg.Logger,
		running:  map[string]*runningJob{},
		perPlug:  map[string]int{},
		pending:  map[queue.LeaseRef]finished{},
		freed:    make(chan struct{}),
		finished: make(chan finished, 4096),
	}
}

// Run keeps a dispatch stream to the leader open until ctx ends,
// reconnecting (to a new leader) whenever it ends.
func (w *Worker) Run(ctx context.Context) {
	defer w.runners.Close()
	w.runCtx = ctx
	go w.collect(ctx)
	restarted := true
	backoff := newBackoff(50*time.Millisecond, 2*time.Second)
	for ctx.Err() == nil {
		st, err := w.leader.OpenDispatch(ctx)
		if err == nil {
			var welcomed bool
			welcomed, err = w.session(ctx, st, restarted)
			_ = st.Close()
			if welcomed {
				restarted = false
				backoff.reset()
			}
		}
		if err != nil && ctx.Err() == nil {
			w.logger.Debug("dispatch stream ended; reconnecting", "error", err)
			backoff.wait(ctx)
		}
	}
}

// collect moves finished attempts into the pending reports.
func (w *Worker) collect(ctx context.Context) {
	for {
		select {
		case f := <-w.finished:
			w.mu.Lock()
			w.pending[queue.LeaseRef{ID: f.report.ID, Token: f.report.Token}] = f
			w.unsent = append(w.unsent, f.report)
			w.signalLocked()
			w.mu.Unlock()
		case <-ctx.Done():
			return
		}
	}
}

// signalLocked wakes everything waiting for a change of slots or reports.
func (w *Worker) signalLocked() {
	close(w.freed)
	w.freed = make(chan struct{})
}

// changed returns a channel closed at the next change of slots or
// reports.
func (w *Worker) changed() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.freed
}

// session serves one dispatch stream; welcomed reports whether the
// leader answered the hello.
func (w *Worker) session(ctx context.Context, st Stream, restarted bool) (welcomed bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := st.Send(&rpc.Hello{Node: w.cfg.Node, Tags: w.cfg.Tags, Restarted: restarted, Running: w.leases()}); err != nil {
		return false, fmt.Errorf("send hello: %w", err)
	}
	var first rpc.Down
	if err := st.Recv(&first); err != nil {
		return false, fmt.Errorf("read welcome: %w", err)
	}
	if !first.Welcome {
		return false, errors.New("dispatch stream: the leader did not answer the hello")
	}
	s := &stream{w: w, st: st, seen: map[string]uint64{}, released: map[string]uint64{}, inflight: map[uint64][]queue.Report{}}
	w.mu.Lock()
	// Nothing unacknowledged is known to the new leader: send it all again
	// (a duplicate is rejected by its fencing token and changes nothing).
	w.unsent = w.unsent[:0]
	for _, f := range w.pending {
		w.unsent = append(w.unsent, f.report)
	}
	w.mu.Unlock()
	s.receive(&first)
	errc := make(chan error, 1)
	go func() {
		for {
			var d rpc.Down
			if err := st.Recv(&d); err != nil {
				errc <- err
				return
			}
			// The ack first: it frees the slots that leases in the same
			// message were granted for.
			if d.Acked != 0 {
				s.acked(d.Acked, d.Rejected)
			}
			s.receive(&d)
		}
	}()
	return true, s.send(ctx, errc)
}

// stream is the worker's state of one dispatch stream.
type stream struct {
	w  *Worker
	st Stream

	mu       sync.Mutex
	seen     map[string]uint64         // leases received per plugin
	released map[string]uint64         // slots freed by acks, per plugin
	inflight map[uint64][]queue.Report // report batches sent, by seq
	nextSeq  uint64
	last     *rpc.Credit // last credit announced
}

// receive handles a message from the leader and counts its leases for the
// credit announcements. Counting and starting are one step under s.mu, as
// are freeing slots and counting them in acked, so an announcement
// (sendCredit, also under s.mu) never counts a lease in Seen without its
// slot in Free, or a freed slot in Free without it in Released: either
// would make the leader grant more leases than there are slots, and the
// extra ones fail with "no free plugin slot".
func (s *stream) receive(d *rpc.Down) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range d.Leases {
		s.seen[l.Plugin]++
	}
	s.w.handle(d)
}

// acked ends an acknowledged report batch: its slots are free.
func (s *stream) acked(seq uint64, rejected []string) {
	s.mu.Lock()
	batch := s.inflight[seq]
	delete(s.inflight, seq)
	for p, n := range s.w.release(batch) {
		s.released[p] += uint64(n)
	}
	s.mu.Unlock()
	for i, e := range rejected {
		if e != "" && i < len(batch) {
			// A rejected report is normal after a lease was lost: the
			// fencing token kept a stale attempt from overwriting.
			s.w.logger.Info("report rejected", "job", batch[i].ID, "token", batch[i].Token, "reason", e)
		}
	}
}

// send is the stream's writer: reports, heartbeats and credit, until the
// stream fails or ctx ends.
func (s *stream) send(ctx context.Context, errc <-chan error) error {
	w := s.w
	heartbeat := time.NewTicker(w.cfg.LeaseTTL / 3)
	defer heartbeat.Stop()
	recheck := time.NewTicker(pluginRecheck)
	defer recheck.Stop()
	// Credit is checked at the start and then every pluginRecheck: slots
	// that free up need no announcement (the leader counts its acks the
	// same way the worker does), so what is left to notice is a plugin
	// that goes away or comes back.
	if err := s.sendCredit(); err != nil {
		return err
	}
	for {
		changed := w.changed()
		if err := s.sendReports(); err != nil {
			return err
		}
		select {
		case <-changed:
		case <-recheck.C:
			if err := s.sendCredit(); err != nil {
				return err
			}
		case <-heartbeat.C:
			// A worker without leases has nothing to renew: an idle cluster
			// writes no raft entries.
			if leases := w.leases(); len(leases) > 0 {
				if err := s.st.Send(&rpc.Up{Heartbeat: leases}); err != nil {
					return fmt.Errorf("send heartbeat: %w", err)
				}
			}
		case err := <-errc:
			return err
		case <-ctx.Done():
			return nil
		}
	}
}

// sendReports sends the finished attempts not yet sent on this stream, in
// one batch.
func (s *stream) sendReports() error {
	w := s.w
	w.mu.Lock()
	n := min(len(w.unsent), maxReportBatch)
	if n == 0 {
		w.mu.Unlock()
		return nil
	}
	batch := w.unsent[:n:n]
	w.unsent = w.unsent[n:]
	w.mu.Unlock()
	s.mu.Lock()
	s.nextSeq++
	seq := s.nextSeq
	s.inflight[seq] = batch
	s.mu.Unlock()
	if err := s.st.Send(&rpc.Up{Reports: batch, Seq: seq}); err != nil {
		return fmt.Errorf("send reports: %w", err)
	}
	return nil
}

// sendCredit announces the free slots when the leader's estimate of them
// is wrong: the leader subtracts the leases it sent from the last
// announcement, so leases arriving need no announcement, only slots that
// free up (or a plugin that goes away or comes back) do.
func (s *stream) sendCredit() error {
	s.mu.Lock()
	free := s.w.freeSlots()
	if s.last != nil && s.estimateHolds(free) {
		s.mu.Unlock()
		return nil
	}
	c := &rpc.Credit{Free: free, Seen: maps.Clone(s.seen), Released: maps.Clone(s.released)}
	s.last = c
	s.mu.Unlock()
	if err := s.st.Send(&rpc.Up{Credit: c}); err != nil {
		return fmt.Errorf("send credit: %w", err)
	}
	return nil
}

// estimateHolds reports whether the leader's view of the free slots (the
// last announcement, less the leases sent since, plus the slots acks have
// freed since) equals free. Called with s.mu held.
func (s *stream) estimateHolds(free map[string]int) bool {
	estimate := func(p string) int {
		return max(s.last.Free[p]-int(s.seen[p]-s.last.Seen[p])+int(s.released[p]-s.last.Released[p]), 0)
	}
	// A plugin missing from free has no slots here; the leader can only
	// think otherwise for plugins announced or freed by its acks.
	gone := func(p string) bool { _, ok := free[p]; return !ok && estimate(p) > 0 }
	for p := range s.last.Free {
		if gone(p) {
			return false
		}
	}
	for p := range s.released {
		if gone(p) {
			return false
		}
	}
	for p, n := range free {
		if estimate(p) != n {
			return false
		}
	}
	return true
}

// freeSlots returns the free slots of each ready plugin (0 when all are
// taken).
func (w *Worker) freeSlots() map[string]int {
	out := map[string]int{}
	statuses := w.plugins.Plugins()
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, p := range statuses {
		if p.Status != host.StateReady {
			continue
		}
		// A ready plugin is listed even with no free slot: the leader
		// refills the slots an ack frees only for plugins listed here.
		out[p.Name] = max(p.Concurrency-w.perPlug[p.Name], 0)
	}
	return out
}

// handle applies a message from the leader: aborts, then new leases.
func (w *Worker) handle(d *rpc.Down) {
	w.abort(d.Abort)
	for _, l := range d.Leases {
		w.start(w.runCtx, l)
	}
}

// leases lists the leases this node holds, finished ones whose report is
// not yet acknowledged included.
func (w *Worker) leases() []queue.LeaseRef {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]queue.LeaseRef, 0, len(w.running))
	for id, rj := range w.running {
		out = append(out, queue.LeaseRef{ID: id, Token: rj.lease.Token})
	}
	return out
}

// abort cancels the running attempts the leader says to stop.
func (w *Worker) abort(aborts []queue.Abort) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, a := range aborts {
		if rj, ok := w.running[a.ID]; ok && rj.lease.Token == a.Token && !rj.done {
			rj.aborted = true
			rj.cancel(errAborted{reason: a.Reason})
		}
	}
}

// start runs one leased job in its plugin. ctx is the worker's, not the
// stream's: the job runs on when the stream ends, and its lease is
// re-announced to the next leader.
func (w *Worker) start(ctx context.Context, l rpc.Lease) {
	jctx, cancel := context.WithCancelCause(ctx)
	rj := &runningJob{lease: l, cancel: cancel}
	w.mu.Lock()
	if old, ok := w.running[l.ID]; ok && old.lease.Token == l.Token {
		// The same lease again (handed over on a new stream while the old
		// one delivered it too): it already runs here.
		w.mu.Unlock()
		cancel(nil)
		return
	}
	if old, ok := w.running[l.ID]; ok && old.lease.Token != l.Token {
		// A new lease on a job this node still runs under an older token
		// (the old lease was lost): the old attempt must stop.
		old.cancel(errAborted{reason: "lease lost: a newer attempt owns the job"})
	}
	w.running[l.ID] = rj
	w.perPlug[l.Plugin]++
	w.mu.Unlock()
	w.runners.Run(func() {
		defer cancel(nil)
		report := w.execute(jctx, rj)
		w.mu.Lock()
		rj.done = true
		w.mu.Unlock()
		select {
		case w.finished <- finished{report: report, plugin: l.Plugin}:
		case <-ctx.Done():
			// Shutting down: the lease is ended by FailNode on leave or
			// expires; there may be no leader to take a report now.
		}
	})
}

// release forgets acknowledged attempts and frees their slots, and
// returns how many it freed per plugin.
func (w *Worker) release(batch []queue.Report) (freed map[string]int) {
	freed = map[string]int{}
	if len(batch) == 0 {
		return freed
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, r := range batch {
		ref := queue.LeaseRef{ID: r.ID, Token: r.Token}
		f, ok := w.pending[ref]
		if !ok {
			continue // acknowledged twice (sent again on a new stream)
		}
		delete(w.pending, ref)
		w.perPlug[f.plugin]--
		freed[f.plugin]++
		if rj, ok := w.running[r.ID]; ok && rj.lease.Token == r.Token {
			delete(w.running, r.ID)
		}
	}
	w.signalLocked()
	return freed
}

// execute runs the attempt and turns its outcome into a report.
func (w *Worker) execute(ctx context.Context, rj *runningJob) queue.Report {
	l := rj.lease
	rep := queue.Report{ID: l.ID, Token: l.Token, Node: w.cfg.Node}
	sink := &jobReporter{logs: w.logs, id: l.ID, attempt: l.Attempt, logger: w.logger, progress: &rj.progress}
	result, err := w.plugins.Run(ctx, l.Plugin, host.RunRequest{
		JobID: l.ID, Attempt: l.Attempt, Queue: l.Queue, Payload: l.Payload, Timeout: l.Timeout,
	}, sink)
	sink.close()
	var jerr *host.JobError
	var aborted errAborted
	switch {
	case err == nil && w.cfg.MaxResult > 0 && len(result) > w.cfg.MaxResult:
		rep.Outcome = queue.OutcomeFailed
		rep.Error = fmt.Sprintf("result of %d bytes exceeds the %d-byte limit (limits.max_result_bytes)", len(result), w.cfg.MaxResult)
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

// Progress returns a running job's last progress on this node.
func (w *Worker) Progress(id string) (percent float64, message string, ok bool) {
	w.mu.Lock()
	rj, found := w.running[id]
	w.mu.Unlock()
	if !found {
		return 0, "", false
	}
	rj.progress.mu.Lock()
	defer rj.progress.mu.Unlock()
	return rj.progress.percent, rj.progress.message, rj.progress.set
}

// Runs reports whether this node is running the given attempt of a job
// (its plugin call has not returned yet).
func (w *Worker) Runs(id string, attempt int) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	rj, ok := w.running[id]
	return ok && rj.lease.Attempt == attempt && !rj.done
}

// jobReporter receives a running job's logs and progress from the plugin.
// The plugin host calls it from one goroutine. The log file is created at
// the first line, so jobs that print nothing cost no file system work.
type jobReporter struct {
	logs     *Logs
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
