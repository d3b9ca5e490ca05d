package server

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/corral-dev/corral/daemon/raftnode"
	"github.com/corral-dev/corral/queue"
	"github.com/hashicorp/go-hclog"
	metrics "github.com/hashicorp/go-metrics/compat"
	"github.com/hashicorp/raft"
)

const (
	// maxBatchCmds caps the commands per raft entry.
	maxBatchCmds = 1024
	// maxInflightEntries caps entries handed to raft but not yet applied.
	maxInflightEntries = 64
	// pipelineWeight is the batch weight (jobs and reports) at which a
	// batch is sent while another entry is still being committed.
	pipelineWeight = 256
	// applyTimeout bounds how long raft may take to accept an entry.
	applyTimeout = 10 * time.Second
)

// applier is the leader's group commit: callers hand it one command each,
// and it packs whatever is waiting into one raft entry (queue.Entry), so
// concurrent submits, claims and completions share a log write and fsync.
type applier struct {
	raft   *raft.Raft
	logger hclog.Logger
	reqs   chan *applyReq
	pipe   pipeline // entries handed to raft, not yet applied
	now    func() time.Time
	// stopped is closed when run has returned: nothing takes requests any
	// more.
	stopped chan struct{}
	// parked holds claims of idle nodes; they ride along in the next
	// entry that can make work available, saving a commit round trip.
	parked parkedClaims
}

// parkedClaims is a set of claim requests waiting for work.
type parkedClaims struct {
	mu   sync.Mutex
	reqs []*applyReq
}

// park adds a claim request; it is answered on req.done once it has been
// applied as part of an entry.
func (p *parkedClaims) park(req *applyReq) {
	p.mu.Lock()
	p.reqs = append(p.reqs, req)
	p.mu.Unlock()
}

// unpark removes req. It returns false when the applier already took it:
// the caller must then wait for req.done, whose leases are real.
func (p *parkedClaims) unpark(req *applyReq) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, r := range p.reqs {
		if r == req {
			p.reqs = append(p.reqs[:i], p.reqs[i+1:]...)
			return true
		}
	}
	return false
}

// take removes up to n parked claims for the work of an entry: with all
// set, every claim; otherwise, in the order they were parked, claims with
// slots for a plugin in jobs until their slots cover its job count. The
// claims left parked ride with the next entry that makes work, instead of
// all being spent on one entry that needed a single claim and leaving the
// next one with none while their polls park again.
func (p *parkedClaims) take(n int, jobs map[string]int, all bool) []*applyReq {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []*applyReq
	kept := p.reqs[:0]
	for _, r := range p.reqs {
		if len(out) < n && (all || coversNeed(r.cmd, jobs)) {
			out = append(out, r)
		} else {
			kept = append(kept, r)
		}
	}
	clear(p.reqs[len(kept):])
	p.reqs = kept
	return out
}

// coversNeed reports whether a parked Claim has slots for a plugin that
// still has jobs in need, and if so counts its slots against them.
func coversNeed(c queue.Command, jobs map[string]int) bool {
	cl, ok := c.(*queue.Claim)
	if !ok {
		return false
	}
	useful := false
	for p, n := range cl.Slots {
		if n > 0 && jobs[p] > 0 {
			useful = true
		}
	}
	if useful {
		for p, n := range cl.Slots {
			jobs[p] -= n
		}
	}
	return useful
}

// takeAll removes every parked request.
func (p *parkedClaims) takeAll() []*applyReq {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.reqs
	p.reqs = nil
	return out
}

// makesWork counts per plugin the jobs a command can make claimable: a
// submit those of its specs (a SubmitDAG those without parents); a retry
// (single or bulk), a queue change or a lease expiry
// (whose entry also promotes due scheduled jobs) any plugin's (all).
func makesWork(c queue.Command, jobs map[string]int) (all bool) {
	switch cmd := c.(type) {
	case *queue.Submit:
		for i := range cmd.Specs {
			jobs[cmd.Specs[i].Plugin]++
		}
	case *queue.SubmitDAG:
		for i := range cmd.Specs {
			if len(cmd.Specs[i].DependsOn) == 0 { // the others start blocked
				jobs[cmd.Specs[i].Plugin]++
			}
		}
	case *queue.Retry, *queue.BulkRetry, *queue.SetQueue, *queue.SetQueueRate, *queue.ExpireLeases:
		return true
	}
	return false
}

type applyReq struct {
	cmd  queue.Command
	done chan applyDone
}

type applyDone struct {
	result queue.Result
	index  uint64
	err    error
}

func newApplier(r *raft.Raft, logger hclog.Logger) *applier {
	return &applier{
		raft:    r,
		logger:  logger,
		reqs:    make(chan *applyReq, maxBatchCmds),
		pipe:    newPipeline(maxInflightEntries),
		stopped: make(chan struct{}),
		now:     func() time.Time { return time.Now().UTC() },
	}
}

// Apply replicates cmd through raft and returns its result and the raft
// index of the entry that carried it. It returns ErrNotLeader when this
// node does not lead.
func (a *applier) Apply(ctx context.Context, cmd queue.Command) (queue.Result, uint64, error) {
	defer metrics.MeasureSince([]string{"applier", "apply"}, time.Now())
	req := &applyReq{cmd: cmd, done: make(chan applyDone, 1)}
	select {
	case a.reqs <- req:
	case <-ctx.Done():
		return queue.Result{}, 0, ctx.Err()
	case <-a.stopped:
		return queue.Result{}, 0, ErrShuttingDown
	}
	// Once handed over the command may be committed; wait for the outcome
	// even if ctx ends, so "acknowledged" always means "committed".
	d := a.wait(req)
	return d.result, d.index, d.err
}

// wait returns the outcome of a request handed over to the loop.
func (a *applier) wait(req *applyReq) applyDone {
	select {
	case d := <-req.done:
		return d
	case <-a.stopped:
		// The loop is gone: answer whatever is still queued (maybe this
		// request); a request already in an entry is answered by raft.
		a.drain()
		return <-req.done
	}
}

// ApplyAll replicates several commands at once (a follower's forwarded
// batch): they join the same group commit, and the answer comes when all
// of them are applied. results[i] belongs to cmds[i]; index is the highest
// entry index among them.
func (a *applier) ApplyAll(ctx context.Context, cmds []queue.Command) ([]queue.Result, uint64, error) {
	reqs := make([]*applyReq, len(cmds))
	for i, c := range cmds {
		reqs[i] = &applyReq{cmd: c, done: make(chan applyDone, 1)}
	}
	handed := 0
handover:
	for _, req := range reqs {
		select {
		case a.reqs <- req:
			handed++
		case <-ctx.Done():
			break handover
		case <-a.stopped:
			break handover
		}
	}
	if handed == 0 {
		return nil, 0, firstErr(ctx.Err(), ErrShuttingDown)
	}
	failAll(reqs[handed:], ErrNotLeader) // never handed over: not applied
	results := make([]queue.Result, len(cmds))
	var index uint64
	var failed error
	for i, req := range reqs {
		d := a.wait(req)
		if d.err != nil {
			results[i] = queue.Result{Err: d.err}
			failed = firstErr(failed, d.err)
			continue
		}
		results[i], index = d.result, max(index, d.index)
	}
	if failed != nil && index == 0 {
		return nil, 0, failed // nothing applied
	}
	return results, index, nil
}

// stop marks the applier stopped and fails what is still queued.
func (a *applier) stop() {
	close(a.stopped)
	a.drain()
}

// run packs requests into entries until ctx ends (see gather for when an
// entry goes out).
func (a *applier) run(ctx context.Context) {
	batch := make([]*applyReq, 0, maxBatchCmds)
	jobs := map[string]int{}
	weigh := func(r *applyReq) int { return cmdWeight(r.cmd) }
	for {
		var first *applyReq
		select {
		case first = <-a.reqs:
		case <-ctx.Done():
			a.stop()
			return
		}
		batch = gather(ctx, a.reqs, append(batch[:0], first), maxBatchCmds, pipelineWeight, weigh, a.pipe)
		if !a.pipe.acquire(ctx) {
			failAll(batch, ErrNotLeader)
			a.stop()
			return
		}
		clear(jobs)
		all := false
		for _, r := range batch {
			all = makesWork(r.cmd, jobs) || all
		}
		if all || len(jobs) > 0 {
			batch = append(batch, a.parked.take(maxBatchCmds-len(batch), jobs, all)...)
		}
		a.submit(batch)
	}
}

// cmdWeight is a command's share of an entry for the pipelining decision:
// the jobs or reports it carries.
func cmdWeight(c queue.Command) int {
	switch cmd := c.(type) {
	case *queue.Submit:
		return len(cmd.Specs)
	case *queue.SubmitDAG:
		return len(cmd.Specs)
	case *queue.Complete:
		return len(cmd.Reports)
	}
	return 1
}

// submit encodes one entry and hands it to raft; a goroutine waits for the
// commit and answers every caller.
func (a *applier) submit(batch []*applyReq) {
	entry := queue.Entry{Now: a.now(), Cmds: make([]queue.Command, len(batch))}
	for i, r := range batch {
		entry.Cmds[i] = r.cmd
	}
	reqs := append([]*applyReq(nil), batch...)
	data, err := queue.Encode(entry)
	if err != nil {
		a.pipe.release()
		failAll(reqs, fmt.Errorf("encode entry: %w", err))
		return
	}
	metrics.AddSample([]string{"applier", "entry_commands"}, float32(len(batch)))
	metrics.AddSample([]string{"applier", "entry_bytes"}, float32(len(data)))
	start := time.Now()
	fut := a.raft.Apply(data, applyTimeout)
	go func() {
		defer a.pipe.release()
		err := fut.Error()
		metrics.MeasureSince([]string{"applier", "commit"}, start)
		if err != nil {
			failAll(reqs, mapRaftError(err))
			return
		}
		resp, _ := fut.Response().(raftnode.ApplyResponse)
		if resp.Err != nil {
			failAll(reqs, resp.Err)
			return
		}
		for i, r := range reqs {
			d := applyDone{index: fut.Index()}
			if i < len(resp.Results) {
				d.result = resp.Results[i]
			} else {
				d.err = errors.New("internal error: missing result for command")
			}
			r.done <- d
		}
	}()
}

// drain fails requests still queued when the applier stops.
func (a *applier) drain() {
	failAll(a.parked.takeAll(), ErrNotLeader)
	for {
		select {
		case r := <-a.reqs:
			r.done <- applyDone{err: ErrNotLeader}
		default:
			return
		}
	}
}

func failAll(reqs []*applyReq, err error) {
	for _, r := range reqs {
		r.done <- applyDone{err: err}
	}
}

// mapRaftError turns raft's errors into the daemon's.
func mapRaftError(err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return ErrNotLeader
	case errors.Is(err, raft.ErrLeadershipLost):
		return ErrLeadershipLost
	case errors.Is(err, raft.ErrRaftShutdown):
		return ErrShuttingDown
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return fmt.Errorf("raft is overloaded (entry not accepted in %s); retry: %w", applyTimeout, err)
	}
	return err
}
