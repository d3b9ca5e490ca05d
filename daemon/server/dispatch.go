package server

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/corral-dev/corral/daemon/rpc"
	"github.com/corral-dev/corral/queue"
)

// Stream is one worker's dispatch stream as the leader sees it: an rpc
// stream, remote or in-process. Send and Recv are each used by one
// goroutine.
type Stream interface {
	Send(v any) error
	Recv(v any) error
}

// Dispatch serves one worker's dispatch stream (rpc.MethodDispatch) until
// the worker goes away or this node stops leading; the worker then
// reconnects to the new leader. Only the leader, once it has caught up
// with the log, serves it: ErrNotLeader otherwise.
func (s *Server) Dispatch(ctx context.Context, st Stream) error {
	s.mu.Lock()
	term := s.term
	s.mu.Unlock()
	if term.Err() != nil || !s.IsLeader() {
		return ErrNotLeader
	}
	var hello rpc.Hello
	if err := st.Recv(&hello); err != nil {
		return fmt.Errorf("dispatch stream: read hello: %w", err)
	}
	if err := hello.Validate(); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(term, cancel)()
	ss := newSession(s, &hello, st, cancel)
	s.addSession(ss)
	defer s.removeSession(ss)
	return ss.run(ctx)
}

// addSession registers ss, ending an older session of the same node (a
// stream the worker has already given up on).
func (s *Server) addSession(ss *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.sessions[ss.node]; old != nil {
		old.cancel()
	}
	s.sessions[ss.node] = ss
}

func (s *Server) removeSession(ss *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sessions[ss.node] == ss {
		delete(s.sessions, ss.node)
	}
}

// session is the leader's side of one dispatch stream.
type session struct {
	srv     *Server
	node    string
	tags    map[string]string
	hello   *rpc.Hello
	st      Stream
	cancel  context.CancelFunc
	credits credits
	out     chan *rpc.Down

	mu sync.Mutex
	// held are the leases the worker holds as far as the leader knows
	// (pushed, or re-announced in the hello), by job ID; aborted are
	// those it has already been told to stop.
	held    map[string]uint64
	aborted map[string]uint64
	// checked is the store's LeaseEvents when held was last checked for
	// aborts; checkedAll is false while a lease in held is unchecked.
	checked    uint64
	checkedAll bool
}

func newSession(s *Server, hello *rpc.Hello, st Stream, cancel context.CancelFunc) *session {
	return &session{
		srv: s, node: hello.Node, tags: hello.Tags, hello: hello, st: st, cancel: cancel,
		credits: newCredits(),
		out:     make(chan *rpc.Down, 64),
		held:    map[string]uint64{},
		aborted: map[string]uint64{},
	}
}

// run handles the hello, then serves the stream until it fails or ctx
// ends.
func (ss *session) run(ctx context.Context) error {
	welcome, err := ss.welcome(ctx)
	if err != nil {
		return err
	}
	errc := make(chan error, 2)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		errc <- ss.write(ctx)
	}()
	go func() {
		defer wg.Done()
		ss.claim(ctx)
	}()
	ss.send(ctx, welcome)
	// The reader is not waited for: it is blocked in Recv until the stream
	// closes, which happens when this handler returns.
	go func() { errc <- ss.read(ctx) }()
	select {
	case err = <-errc:
	case <-ctx.Done():
	}
	ss.cancel()
	wg.Wait()
	return err
}

// welcome ends the leases of a restarted node's previous run and renews
// the leases a reconnecting worker re-announces.
func (ss *session) welcome(ctx context.Context) (*rpc.Down, error) {
	d := &rpc.Down{Welcome: true}
	if ss.hello.Restarted {
		res, _, err := ss.srv.applier.Apply(ctx, &queue.FailNode{Node: ss.node, Reason: "node restarted"})
		if err = firstErr(err, res.Err); err != nil {
			return nil, fmt.Errorf("end the leases of %s's previous run: %w", ss.node, err)
		}
	}
	if len(ss.hello.Running) > 0 {
		res, _, err := ss.srv.applier.Apply(ctx, &queue.Heartbeat{Node: ss.node, Leases: ss.hello.Running, LeaseTTL: ss.srv.cfg.LeaseTTL})
		if err = firstErr(err, res.Err); err != nil {
			return nil, fmt.Errorf("renew the leases of %s: %w", ss.node, err)
		}
		ss.mu.Lock()
		for _, l := range ss.hello.Running {
			ss.held[l.ID] = l.Token
		}
		ss.checkedAll = false
		for _, a := range res.Abort {
			ss.aborted[a.ID] = a.Token
		}
		ss.mu.Unlock()
		d.Abort = res.Abort
	}
	d.Leases = ss.handOver()
	return d, nil
}

// handOver returns the leases the FSM holds for the node that the worker
// does not know of: pushed on a stream that died before they arrived (the
// old leader's, or this one's). They go to the worker now instead of
// expiring a lease TTL later.
func (ss *session) handOver() []rpc.Lease {
	known := make(map[queue.LeaseRef]bool, len(ss.hello.Running))
	for _, l := range ss.hello.Running {
		known[l] = true
	}
	var out []rpc.Lease
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for _, ref := range ss.srv.store.Running(ss.node) {
		if known[ref] {
			continue
		}
		j, ok := ss.srv.store.Get(ref.ID)
		if !ok || j.CancelRequested {
			continue // a cancelled job ends when its lease does
		}
		out = append(out, leaseOf(j))
		ss.held[j.ID] = j.Token
		ss.credits.granted(j.Plugin)
	}
	return out
}

// leaseOf is a running job as a lease for its worker.
func leaseOf(j *queue.Job) rpc.Lease {
	return rpc.Lease{ID: j.ID, Token: j.Token, Attempt: j.Attempt, Queue: j.Queue, Plugin: j.Plugin, Payload: j.Payload, Timeout: j.Timeout}
}

// send queues a message for the worker (dropped once the session ends).
func (ss *session) send(ctx context.Context, d *rpc.Down) {
	select {
	case ss.out <- d:
	case <-ctx.Done():
	}
}

// write sends queued messages down the stream.
func (ss *session) write(ctx context.Context) error {
	for {
		select {
		case d := <-ss.out:
			if err := ss.st.Send(d); err != nil {
				return fmt.Errorf("dispatch stream to %s: %w", ss.node, err)
			}
		case <-ctx.Done():
			return nil
		}
	}
}

// read handles the worker's messages until the stream fails.
func (ss *session) read(ctx context.Context) error {
	for {
		var up rpc.Up
		if err := ss.st.Recv(&up); err != nil {
			return fmt.Errorf("dispatch stream from %s: %w", ss.node, err)
		}
		if err := up.Validate(); err != nil {
			return err
		}
		if up.Credit != nil {
			ss.credits.announce(up.Credit)
		}
		if up.Heartbeat != nil {
			go ss.heartbeat(ctx, up.Heartbeat)
		}
		if len(up.Reports) > 0 {
			go ss.report(ctx, up.Seq, up.Reports)
		}
	}
}

// heartbeat renews leases and pushes the aborts the FSM answers with.
func (ss *session) heartbeat(ctx context.Context, leases []queue.LeaseRef) {
	res, _, err := ss.srv.applier.Apply(ctx, &queue.Heartbeat{Node: ss.node, Leases: leases, LeaseTTL: ss.srv.cfg.LeaseTTL})
	if err = firstErr(err, res.Err); err != nil {
		ss.srv.logger.Debug("heartbeat not applied", "node", ss.node, "error", err)
		return
	}
	if len(res.Abort) > 0 {
		ss.mu.Lock()
		for _, a := range res.Abort {
			ss.aborted[a.ID] = a.Token
		}
		ss.mu.Unlock()
		ss.send(ctx, &rpc.Down{Abort: res.Abort})
	}
}

// report applies a batch of finished attempts and acknowledges it once
// committed. A rejected (stale) report changes nothing; the worker learns
// why.
func (ss *session) report(ctx context.Context, seq uint64, reports []queue.Report) {
	// The ack frees the slots of the leases this stream knew the worker
	// held; a report sent again after a reconnect, for a lease the worker
	// no longer counts, frees nothing on either side.
	freed := map[string]int{}
	ss.mu.Lock()
	for i := range reports {
		reports[i].Node = ss.node // a worker reports only for itself
		boundReport(&reports[i], ss.srv.cfg.MaxResultBytes)
		if token, ok := ss.held[reports[i].ID]; ok && token == reports[i].Token {
			delete(ss.held, reports[i].ID)
			delete(ss.aborted, reports[i].ID)
			if j, ok := ss.srv.store.Get(reports[i].ID); ok {
				freed[j.Plugin]++
			}
		}
	}
	ss.mu.Unlock()
	// The slots the batch frees are refilled in the same raft entry: a
	// claim for them rides behind the Complete (one commit per slot
	// cycle instead of two). The claim loop cannot grant these slots
	// twice: they reach its credit only with the release below, after
	// this claim's leases are counted as sent.
	cmds := []queue.Command{&queue.Complete{Reports: reports}}
	if slots := ss.credits.refill(freed); len(slots) > 0 && ss.srv.store.Claimable(ss.tags, slots) {
		cmds = append(cmds, &queue.Claim{Node: ss.node, Tags: ss.tags, Slots: slots, LeaseTTL: ss.srv.cfg.LeaseTTL})
	}
	results, _, err := ss.srv.applier.ApplyAll(ctx, cmds)
	if err == nil {
		err = results[0].Err
	}
	if err != nil {
		// Not acknowledged: the stream ends and the worker sends the batch
		// again on its next one (most likely to the next leader). A claim
		// that was applied all the same has leases the FSM knows: they
		// are handed over on the next stream or expire.
		ss.srv.logger.Debug("reports not applied; ending the stream", "node", ss.node, "error", err)
		ss.cancel()
		return
	}
	d := &rpc.Down{Acked: seq, Rejected: make([]string, len(reports))}
	for i, e := range results[0].Reports {
		if e != nil && i < len(d.Rejected) {
			d.Rejected[i] = e.Error()
		}
	}
	if len(results) > 1 {
		if results[1].Err != nil {
			ss.srv.logger.Debug("claim with reports not applied", "node", ss.node, "error", results[1].Err)
		}
		// The worker takes the ack before the leases of the same message,
		// so the slots are free when they arrive.
		d.Leases = ss.lease(results[1].Leases)
	}
	ss.send(ctx, d)
	ss.credits.release(freed)
}

// claim leases queued jobs to the worker's free slots, for as long as the
// session lasts. A claim goes to raft only when the claim rules say it can
// grant something (jobs no node can run cost no entries); otherwise it is
// parked in the applier and rides along with the next entry that makes
// work (a submit, a retry, a resume), so a job submitted to an idle
// cluster is leased in its own submit's entry.
func (ss *session) claim(ctx context.Context) {
	s := ss.srv
	for ctx.Err() == nil {
		_, changed := s.store.Watch()
		ss.pushAborts(ctx)
		var (
			parked *applyReq
			timer  *time.Timer
		)
		if free := ss.credits.available(); len(free) > 0 {
			c := &queue.Claim{Node: ss.node, Tags: ss.tags, Slots: free, LeaseTTL: s.cfg.LeaseTTL}
			// The claim's entry is stamped later than now, so a job
			// claimable now (rate-limit tokens included) still is then.
			ok, next := s.store.ClaimableAt(time.Now(), ss.tags, free)
			if ok {
				// Leases are answered even if the stream is gone: they
				// expire and the jobs are retried.
				res, _, err := s.applier.Apply(context.WithoutCancel(ctx), c)
				if err = firstErr(err, res.Err); err != nil {
					s.logger.Debug("claim not applied", "node", ss.node, "error", err)
					ss.cancel() // most likely no longer the leader
					return
				}
				ss.grant(ctx, res.Leases)
				continue
			}
			parked = &applyReq{cmd: c, done: make(chan applyDone, 1)}
			s.applier.parked.park(parked)
			if !next.IsZero() {
				// A rate limit holds back a job for these slots: claim
				// again when its bucket has a token (no entry until then).
				timer = time.NewTimer(time.Until(next))
			}
		}
		select {
		case d := <-parkedDone(parked):
			parked = nil
			ss.grant(ctx, d.result.Leases)
		case <-timerC(timer):
		case <-changed:
		case <-ss.credits.changed:
		case <-ctx.Done():
		}
		if timer != nil {
			timer.Stop()
		}
		if parked != nil && !s.applier.parked.unpark(parked) {
			// The applier already put the claim in an entry: its leases
			// are real and must reach the worker.
			d := <-parked.done
			ss.grant(ctx, d.result.Leases)
		}
	}
}

// timerC returns t's channel, or nil (blocks forever) without a timer.
func timerC(t *time.Timer) <-chan time.Time {
	if t == nil {
		return nil
	}
	return t.C
}

// parkedDone returns the result channel of a parked claim, or nil (which
// blocks forever in a select) when nothing is parked.
func parkedDone(req *applyReq) <-chan applyDone {
	if req == nil {
		return nil
	}
	return req.done
}

// grant pushes granted leases to the worker and counts them against its
// credit.
func (ss *session) grant(ctx context.Context, leases []queue.Lease) {
	if len(leases) == 0 {
		return
	}
	ss.send(ctx, &rpc.Down{Leases: ss.lease(leases)})
}

// lease records granted leases as held by the worker and sent against its
// credit, and returns them as the worker sees them.
func (ss *session) lease(leases []queue.Lease) []rpc.Lease {
	if len(leases) == 0 {
		return nil
	}
	out := make([]rpc.Lease, len(leases))
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for i, l := range leases {
		out[i] = leaseOf(l.Job)
		ss.held[l.Job.ID] = l.Token
		ss.credits.granted(l.Job.Plugin)
		// A cancel (or a newer lease) that committed after the claim may
		// already have been checked against held without this lease:
		// have the next pushAborts look again, so the abort goes out at
		// once rather than with a heartbeat.
		if j, ok := ss.srv.store.Get(l.Job.ID); !ok || j.Token != l.Token || j.CancelRequested {
			ss.checkedAll = false
		}
	}
	return out
}

// pushAborts tells the worker at once to stop leases whose job was
// cancelled, re-leased elsewhere or removed (heartbeats would tell it too,
// but only every third of the lease TTL).
func (ss *session) pushAborts(ctx context.Context) {
	events := ss.srv.store.LeaseEvents()
	var aborts []queue.Abort
	ss.mu.Lock()
	if ss.checkedAll && events == ss.checked {
		// Nothing that could cancel or end a lease happened since the
		// last check: on a busy leader this check runs at every entry.
		ss.mu.Unlock()
		return
	}
	ss.checked, ss.checkedAll = events, true
	for id, token := range ss.held {
		if ss.aborted[id] == token {
			continue
		}
		j, ok := ss.srv.store.Get(id)
		var reason string
		switch {
		case !ok:
			reason = "job no longer exists"
		case j.State != queue.StateRunning || j.Token != token || j.Node != ss.node:
			reason = "lease lost: a newer attempt owns the job"
		case j.CancelRequested:
			reason = "cancelled"
		default:
			continue
		}
		aborts = append(aborts, queue.Abort{ID: id, Token: token, Reason: reason})
		ss.aborted[id] = token
	}
	ss.mu.Unlock()
	if len(aborts) > 0 {
		ss.send(ctx, &rpc.Down{Abort: aborts})
	}
}

// credits is the leader's account of one worker's free slots. The worker
// announces its free slots (Free), with how many leases it had received
// (Seen) and how many slots acks had freed (Released) when it counted;
// the leader adds what it has done since: free now = Free - (leases sent
// - Seen) + (slots its acks freed - Released).
type credits struct {
	mu       sync.Mutex
	free     map[string]int    // as last announced
	sent     map[string]uint64 // leases pushed on this stream, per plugin
	seen     map[string]uint64 // leases the worker had when it announced
	released map[string]uint64 // slots freed by acks sent on this stream
	counted  map[string]uint64 // of those, the ones the announcement counted
	// changed is signalled (without blocking) at each change.
	changed chan struct{}
}

func newCredits() credits {
	return credits{free: map[string]int{}, sent: map[string]uint64{}, seen: map[string]uint64{},
		released: map[string]uint64{}, counted: map[string]uint64{}, changed: make(chan struct{}, 1)}
}

// signal wakes the claim loop.
func (c *credits) signal() {
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

// announce records a worker's announcement.
func (c *credits) announce(cr *rpc.Credit) {
	c.mu.Lock()
	c.free, c.seen, c.counted = cr.Free, cr.Seen, cr.Released
	c.mu.Unlock()
	c.signal()
}

// release counts slots an ack has freed.
func (c *credits) release(freed map[string]int) {
	if len(freed) == 0 {
		return
	}
	c.mu.Lock()
	for p, n := range freed {
		c.released[p] += uint64(n)
	}
	c.mu.Unlock()
	c.signal()
}

// available returns the slots free now per plugin (plugins without any
// are left out).
func (c *credits) available() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int{}
	for p := range c.free {
		c.add(out, p)
	}
	for p := range c.released {
		c.add(out, p)
	}
	return out
}

// add puts plugin p's free slots into out when there are any. Called with
// c.mu held.
func (c *credits) add(out map[string]int, p string) {
	unseen := c.sent[p] - min(c.seen[p], c.sent[p])
	uncounted := c.released[p] - min(c.counted[p], c.released[p])
	if n := int64(max(c.free[p], 0)) - int64(unseen) + int64(uncounted); n > 0 {
		out[p] = int(n)
	}
}

// refill returns the slots of freed that can take new leases: those of
// plugins the worker's last announcement lists (a plugin it no longer has
// gets none).
func (c *credits) refill(freed map[string]int) map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int{}
	for p, n := range freed {
		if _, ok := c.free[p]; ok && n > 0 {
			out[p] = n
		}
	}
	return out
}

// granted counts one lease sent for plugin.
func (c *credits) granted(plugin string) {
	c.mu.Lock()
	c.sent[plugin]++
	c.mu.Unlock()
}

// maxReportError bounds the error text of a reported attempt.
const maxReportError = 4 << 10

// boundReport enforces, on the leader, the bounds a worker should have
// applied to its report: an over-limit result fails the attempt instead
// of entering the raft log, and a long error text is cut.
func boundReport(r *queue.Report, maxResult int) {
	if maxResult > 0 && len(r.Result) > maxResult {
		r.Outcome, r.Result = queue.OutcomeFailed, nil
		r.Error = fmt.Sprintf("result of the reported attempt exceeds the %d-byte limit (limits.max_result_bytes)", maxResult)
	}
	if len(r.Error) > maxReportError {
		r.Error = r.Error[:maxReportError] + "..."
	}
}
