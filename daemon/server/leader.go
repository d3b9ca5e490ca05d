package server

import (
	"context"
	"sync"
	"time"

	"github.com/corral-dev/corral/queue"
	"github.com/hashicorp/raft"
)

const (
	// minTickGap keeps the reaper from spinning if a deadline does not move.
	minTickGap = 50 * time.Millisecond
	// idleTick bounds how long the reaper sleeps with nothing due.
	idleTick = 30 * time.Second
)

// monitorLeadership is the one goroutine that watches leadership: it runs
// exactly one leader loop while this node leads and stops it on loss.
func (s *Server) monitorLeadership(ctx context.Context) {
	var (
		stop context.CancelFunc
		wg   sync.WaitGroup
	)
	stopLeader := func() {
		if stop != nil {
			stop()
			wg.Wait()
			stop = nil
			s.logger.Info("leader loop stopped")
		}
	}
	defer stopLeader()
	for {
		select {
		case isLeader := <-s.leaderCh:
			switch {
			case isLeader && stop == nil:
				lctx, cancel := context.WithCancel(ctx)
				stop = cancel
				wg.Add(1)
				go func() {
					defer wg.Done()
					s.leaderLoop(lctx)
				}()
			case !isLeader:
				stopLeader()
			}
		case <-ctx.Done():
			return
		}
	}
}

// leaderLoop runs the leader's duties. It first issues a Barrier so the
// FSM holds every committed entry, then starts leader-only work; all
// leader state is rebuilt from the FSM here, never carried over.
func (s *Server) leaderLoop(ctx context.Context) {
	s.logger.Info("cluster leadership acquired")
	backoff := 100 * time.Millisecond
	for {
		if err := s.raft.Barrier(applyTimeout).Error(); err == nil {
			break
		} else {
			s.logger.Warn("barrier failed; retrying", "error", err)
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return
		}
		if backoff < 2*time.Second {
			backoff *= 2
		}
	}
	if s.raft.State() != raft.Leader {
		return
	}
	s.syncQueueConfig(ctx)
	s.syncQueueRates(ctx)
	s.syncPeriodics(ctx)
	s.mu.Lock()
	s.term = ctx
	m := s.membership
	s.mu.Unlock()
	if m != nil {
		m.LeaderStart()
		defer m.LeaderStop()
	}
	var wg sync.WaitGroup
	for _, f := range []func(context.Context){s.runReaper, s.runPeriodic} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(ctx)
		}()
	}
	<-ctx.Done()
	wg.Wait()
}

// syncQueueConfig replicates the queue settings of this node's config
// (max_attempts, concurrency, retention) where the FSM differs. Pauses are
// runtime state and are left alone.
func (s *Server) syncQueueConfig(ctx context.Context) {
	current := map[string]queue.QueueConfig{}
	for _, q := range s.store.Queues() {
		current[q.Name] = q.Config
	}
	var cmds []queue.Command
	var names []string
	for name, want := range s.cfg.Queues {
		cur, ok := current[name]
		if ok && cur.MaxAttempts == want.MaxAttempts && cur.Concurrency == want.Concurrency && cur.Retention == want.Retention {
			continue
		}
		cmds = append(cmds, &queue.SetQueue{Name: name, Fields: queue.FieldMaxAttempts | queue.FieldConcurrency | queue.FieldRetention, Config: want})
		names = append(names, name)
	}
	s.applyConfig(ctx, cmds, names, "cannot apply queue config", "queue")
}

// applyConfig replicates the commands a sync found missing in one group
// commit and logs, with msg and key=names[i], each one that fails.
func (s *Server) applyConfig(ctx context.Context, cmds []queue.Command, names []string, msg, key string) {
	if len(cmds) == 0 {
		return
	}
	results, _, err := s.applier.ApplyAll(ctx, cmds)
	for i, name := range names {
		if results != nil {
			err = results[i].Err
		}
		if err != nil {
			s.logger.Warn(msg, key, name, "error", err)
		}
	}
}

// runReaper issues the timed commands: lease expiry, retention purge and
// (through any entry's Now) promotion of due scheduled jobs. It sleeps
// until the store's next deadline or the next change.
func (s *Server) runReaper(ctx context.Context) {
	var last time.Time
	for {
		_, changed := s.store.Watch()
		due := s.store.NextDeadline()
		now := time.Now()
		if !due.IsZero() && !due.After(now) && now.Sub(last) >= minTickGap {
			last = now
			s.tick(ctx)
			continue
		}
		wait := idleTick
		if !due.IsZero() {
			wait = max(due.Sub(now), minTickGap)
		}
		if !sleep(ctx, min(wait, idleTick), changed) {
			return
		}
	}
}

// sleep waits for d to pass or changed to fire; it returns false once ctx
// ends.
func sleep(ctx context.Context, d time.Duration, changed <-chan struct{}) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-changed:
	case <-ctx.Done():
		return false
	}
	return true
}

// tick applies one ExpireLeases and one Purge (the applier packs them into
// one entry); the entry's Now also promotes due scheduled jobs.
func (s *Server) tick(ctx context.Context) {
	var wg sync.WaitGroup
	for _, cmd := range []queue.Command{&queue.ExpireLeases{}, &queue.Purge{}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, _, err := s.applier.Apply(ctx, cmd)
			if err = firstErr(err, res.Err); err != nil {
				s.logger.Warn("reaper command failed", "kind", cmd.Kind(), "error", err)
			} else if res.Count > 0 {
				s.logger.Info("reaper", "kind", cmd.Kind(), "jobs", res.Count)
			}
		}()
	}
	wg.Wait()
}
