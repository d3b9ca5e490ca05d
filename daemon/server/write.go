package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/corral-dev/corral/queue"
)

const (
	// rerouteFor bounds how long a write refused unapplied (leadership
	// moved) keeps being sent again to the new leader.
	rerouteFor = 5 * time.Second
	// forwardTimeout bounds one forwarded write.
	forwardTimeout = 20 * time.Second
	// catchUpWait bounds how long a forwarded write waits for the local
	// replica to reach the leader's index (read-your-writes on this node).
	catchUpWait = 2 * time.Second
)

// Write applies cmd through the leader: here when this node leads,
// otherwise by forwarding it over the node plane. A write refused
// unapplied because leadership moved meanwhile goes to the new leader; a
// write in flight when the leader changed may or may not have been
// applied and fails with ErrLeadershipLost. After a forwarded write the
// local replica is given a moment to catch up, so a client reads its own
// write on this node.
func (s *Server) Write(ctx context.Context, cmd queue.Command) (queue.Result, uint64, error) {
	res, index, _, err := s.WriteAndWait(ctx, cmd, 0)
	return res, index, err
}

// WriteAndWait is Write, then a wait of up to wait for every job the
// command submitted to end. The wait happens on the leader, whose replica
// sees a job end first, so a submit-and-wait through a follower costs no
// replication delay; jobs are the submitted jobs as they then stand, in
// the order of the result's Submitted (nil for a spec that failed). With
// wait 0 it is Write.
func (s *Server) WriteAndWait(ctx context.Context, cmd queue.Command, wait time.Duration) (queue.Result, uint64, []*queue.Job, error) {
	deadline := time.Now().Add(rerouteFor)
	pause := 20 * time.Millisecond
	for {
		addr, id, changed, err := s.leader.wait(ctx)
		if err != nil {
			return queue.Result{}, 0, nil, err
		}
		var res queue.Result
		var index uint64
		var jobs []*queue.Job
		if id == s.cfg.NodeID {
			res, index, err = s.applier.Apply(ctx, cmd)
			if err == nil && wait > 0 {
				jobs = s.AwaitSubmitted(ctx, res, wait)
			}
		} else {
			res, index, jobs, err = s.forward(ctx, addr, changed, cmd, wait)
		}
		if !errors.Is(err, ErrNotLeader) || time.Now().After(deadline) {
			return res, index, jobs, err
		}
		// Nothing was applied: once the cluster settles on its new
		// leader, send the write there.
		select {
		case <-changed:
		case <-time.After(pause):
		case <-ctx.Done():
			return queue.Result{}, 0, nil, ctx.Err()
		}
		pause = min(2*pause, 500*time.Millisecond)
	}
}

// AwaitSubmitted waits up to wait until every job a Submit result names
// has ended on this node's replica, and returns them as they then stand
// (nil for a spec that failed or a job that is gone).
func (s *Server) AwaitSubmitted(ctx context.Context, res queue.Result, wait time.Duration) []*queue.Job {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	jobs := make([]*queue.Job, len(res.Submitted))
	for {
		_, changed := s.store.Watch()
		done := true
		for i, sub := range res.Submitted {
			jobs[i] = nil
			if sub.Err != nil {
				continue
			}
			if j, ok := s.store.Get(sub.ID); ok {
				jobs[i] = j
				done = done && j.State.Terminal()
			}
		}
		if done {
			return jobs
		}
		select {
		case <-changed:
		case <-timer.C:
			return jobs
		case <-ctx.Done():
			return jobs
		}
	}
}

// forward sends cmd to the leader at addr, abandoning the call as soon as
// another leader is known (changed). With a wait, the leader waits for the
// submitted jobs to end and the local catch-up is skipped: the answer
// already holds them.
func (s *Server) forward(ctx context.Context, addr string, changed <-chan struct{}, cmd queue.Command, wait time.Duration) (queue.Result, uint64, []*queue.Job, error) {
	s.mu.Lock()
	f := s.forwarder
	s.mu.Unlock()
	if f == nil {
		return queue.Result{}, 0, nil, ErrNoLeader
	}
	cctx, cancel := BindLeader(ctx, changed)
	defer cancel()
	cctx, cancelTimeout := context.WithTimeout(cctx, forwardTimeout+wait)
	defer cancelTimeout()
	results, index, jobs, err := f.Apply(cctx, addr, []queue.Command{cmd}, wait)
	switch {
	case errors.Is(err, ErrNotLeader):
		return queue.Result{}, 0, nil, err
	case err != nil && errors.Is(context.Cause(cctx), ErrLeaderChanged):
		return queue.Result{}, 0, nil, fmt.Errorf("forward to leader at %s: %w", addr, ErrLeadershipLost)
	case err != nil:
		return queue.Result{}, 0, nil, fmt.Errorf("forward to leader at %s: %w", addr, err)
	case len(results) != 1:
		return queue.Result{}, 0, nil, fmt.Errorf("forward to leader at %s: %d results for one command", addr, len(results))
	}
	if wait == 0 {
		s.catchUp(ctx, index)
	}
	return results[0], index, jobs, nil
}

// catchUp waits (briefly) until the local replica has applied index.
func (s *Server) catchUp(ctx context.Context, index uint64) {
	timer := time.NewTimer(catchUpWait)
	defer timer.Stop()
	for {
		idx, changed := s.store.Watch()
		if idx >= index {
			return
		}
		select {
		case <-changed:
		case <-timer.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

// ApplyForwarded applies the commands a follower forwarded (the leader's
// side of Write). It fails with ErrNotLeader, nothing applied, when this
// node does not lead.
func (s *Server) ApplyForwarded(ctx context.Context, cmds []queue.Command) ([]queue.Result, uint64, error) {
	if !s.IsLeader() {
		return nil, 0, ErrNotLeader
	}
	return s.applier.ApplyAll(ctx, cmds)
}

// ReadJob reads a job as the leader sees it after verifying it still
// leads (Consul's consistent mode): a job acknowledged to any client
// before the call is never missed, and a state never goes backwards. On a
// follower the read goes to the leader. The job is nil when there is
// none.
func (s *Server) ReadJob(ctx context.Context, id string) (*queue.Job, uint64, error) {
	addr, leaderID, changed, err := s.leader.wait(ctx)
	if err != nil {
		return nil, 0, err
	}
	if leaderID != s.cfg.NodeID {
		s.mu.Lock()
		f := s.forwarder
		s.mu.Unlock()
		if f == nil {
			return nil, 0, ErrNoLeader
		}
		cctx, cancel := BindLeader(ctx, changed)
		defer cancel()
		return f.ReadJob(cctx, addr, id)
	}
	return s.ReadJobLocal(ctx, id)
}

// ReadJobLocal is the leader's side of ReadJob: ErrNotLeader unless this
// node leads, has caught up with the log of its term, and a quorum still
// follows it.
func (s *Server) ReadJobLocal(ctx context.Context, id string) (*queue.Job, uint64, error) {
	s.mu.Lock()
	term := s.term
	s.mu.Unlock()
	if term.Err() != nil {
		return nil, 0, ErrNotLeader
	}
	if err := s.raft.VerifyLeader().Error(); err != nil {
		return nil, 0, mapRaftError(err)
	}
	j, ok := s.store.Get(id)
	if !ok {
		return nil, s.store.Index(), nil
	}
	return j, j.Index, nil
}
