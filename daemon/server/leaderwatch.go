package server

import (
	"context"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

const (
	// leaderWait bounds how long a caller waits for a leader to be known.
	leaderWait = 5 * time.Second
	// leaderRecheck is the safety net behind raft's leader observations,
	// which may be dropped when the observer falls behind.
	leaderRecheck = 500 * time.Millisecond
)

// leaderWatch follows who leads, from raft's leader observations, so that
// calls to a leader are abandoned the moment this node learns of another
// leader or of an election (a newer term).
type leaderWatch struct {
	raft *raft.Raft
	self string

	mu      sync.Mutex
	addr    string
	id      string
	changed chan struct{} // closed at the next change
}

func newLeaderWatch(r *raft.Raft, self string) *leaderWatch {
	return &leaderWatch{raft: r, self: self, changed: make(chan struct{})}
}

// run follows raft until ctx ends.
func (w *leaderWatch) run(ctx context.Context) {
	ch := make(chan raft.Observation, 16)
	obs := raft.NewObserver(ch, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	w.raft.RegisterObserver(obs)
	defer w.raft.DeregisterObserver(obs)
	tick := time.NewTicker(leaderRecheck)
	defer tick.Stop()
	for {
		w.update()
		select {
		case <-ch:
		case <-tick.C:
		case <-ctx.Done():
			return
		}
	}
}

// update reads the leader from raft and signals a change.
func (w *leaderWatch) update() {
	addr, id := w.raft.LeaderWithID()
	w.mu.Lock()
	defer w.mu.Unlock()
	if string(addr) == w.addr && string(id) == w.id {
		return
	}
	w.addr, w.id = string(addr), string(id)
	close(w.changed)
	w.changed = make(chan struct{})
}

// current returns the leader known now (empty when none) and a channel
// closed when that changes.
func (w *leaderWatch) current() (addr, id string, changed <-chan struct{}) {
	w.update()
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.addr, w.id, w.changed
}

// wait returns the leader, waiting up to leaderWait for one to be known.
func (w *leaderWatch) wait(ctx context.Context) (addr, id string, changed <-chan struct{}, err error) {
	timer := time.NewTimer(leaderWait)
	defer timer.Stop()
	for {
		addr, id, changed = w.current()
		if id != "" {
			return addr, id, changed, nil
		}
		select {
		case <-changed:
		case <-timer.C:
			return "", "", nil, ErrNoLeader
		case <-ctx.Done():
			return "", "", nil, ctx.Err()
		}
	}
}

// Leader returns the leader's raft address and ID as this node knows them
// now (empty when none), and a channel closed when that changes.
func (s *Server) Leader() (addr, id string, changed <-chan struct{}) { return s.leader.current() }

// WaitLeader returns the leader, waiting up to 5s for one to be known; it
// fails with ErrNoLeader.
func (s *Server) WaitLeader(ctx context.Context) (addr, id string, changed <-chan struct{}, err error) {
	return s.leader.wait(ctx)
}

// BindLeader returns a context that is cancelled when ctx is, or as soon as
// changed is closed (the leader known when the call began is no longer the
// leader, see Leader), with cause ErrLeaderChanged: calls to an old leader
// are abandoned at once instead of hanging until it answers.
func BindLeader(ctx context.Context, changed <-chan struct{}) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	go func() {
		select {
		case <-changed:
			cancel(ErrLeaderChanged)
		case <-ctx.Done():
		}
	}()
	return ctx, func() { cancel(context.Canceled) }
}
