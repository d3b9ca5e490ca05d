package daemon

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/corral-dev/corral/queue"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// Errors of the write path.
var (
	// ErrNotLeader means this node is not the leader; the caller forwards.
	ErrNotLeader = errors.New("not the leader")
	// ErrNoLeader means the cluster has no leader right now.
	ErrNoLeader = errors.New("no cluster leader: the cluster is electing one or has lost quorum; retry shortly")
	// ErrShuttingDown means the agent is stopping.
	ErrShuttingDown = errors.New("agent is shutting down")
)

const (
	// maxBatchCmds caps the commands per raft entry.
	maxBatchCmds = 1024
	// maxInflightEntries caps entries handed to raft but not yet applied.
	maxInflightEntries = 64
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
	slots  chan struct{} // in-flight entry tokens
	now    func() time.Time
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
		raft:   r,
		logger: logger,
		reqs:   make(chan *applyReq, maxBatchCmds),
		slots:  make(chan struct{}, maxInflightEntries),
		now:    func() time.Time { return time.Now().UTC() },
	}
}

// Apply replicates cmd through raft and returns its result and the raft
// index of the entry that carried it. It returns ErrNotLeader when this
// node does not lead.
func (a *applier) Apply(ctx context.Context, cmd queue.Command) (queue.Result, uint64, error) {
	req := &applyReq{cmd: cmd, done: make(chan applyDone, 1)}
	select {
	case a.reqs <- req:
	case <-ctx.Done():
		return queue.Result{}, 0, ctx.Err()
	}
	// Once handed over the command may be committed; wait for the outcome
	// even if ctx ends, so "acknowledged" always means "committed".
	d := <-req.done
	return d.result, d.index, d.err
}

// run packs requests into entries until ctx ends.
func (a *applier) run(ctx context.Context) {
	batch := make([]*applyReq, 0, maxBatchCmds)
	for {
		select {
		case a.slots <- struct{}{}:
		case <-ctx.Done():
			a.drain()
			return
		}
		var first *applyReq
		select {
		case first = <-a.reqs:
		case <-ctx.Done():
			a.drain()
			return
		}
		batch = append(batch[:0], first)
	gather:
		for len(batch) < maxBatchCmds {
			select {
			case r := <-a.reqs:
				batch = append(batch, r)
			default:
				break gather
			}
		}
		a.submit(batch)
	}
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
		<-a.slots
		failAll(reqs, fmt.Errorf("encode entry: %w", err))
		return
	}
	fut := a.raft.Apply(data, applyTimeout)
	go func() {
		defer func() { <-a.slots }()
		if err := fut.Error(); err != nil {
			failAll(reqs, mapRaftError(err))
			return
		}
		resp, _ := fut.Response().(applyResponse)
		if resp.err != nil {
			failAll(reqs, resp.err)
			return
		}
		for i, r := range reqs {
			d := applyDone{index: fut.Index()}
			if i < len(resp.results) {
				d.result = resp.results[i]
			} else {
				d.err = errors.New("internal error: missing result for command")
			}
			r.done <- d
		}
	}()
}

// drain fails requests still queued when the applier stops.
func (a *applier) drain() {
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
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost),
		errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return ErrNotLeader
	case errors.Is(err, raft.ErrRaftShutdown):
		return ErrShuttingDown
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return fmt.Errorf("raft is overloaded (entry not accepted in %s); retry: %w", applyTimeout, err)
	}
	return err
}
