package server

import (
	"context"
	"errors"
	"time"

	"github.com/corral-dev/corral/queue"
	"github.com/oklog/ulid/v2"
)

// periodicRetry is how long the firer waits after a fire that failed for
// a reason other than a lost race.
const periodicRetry = time.Second

// syncPeriodics replicates the periodic blocks of this node's config where
// the FSM differs. Periodic jobs made through the API are left alone.
func (s *Server) syncPeriodics(ctx context.Context) {
	var cmds []queue.Command
	var names []string
	for _, want := range s.cfg.Periodics {
		want.Job.Queue = cmpOr(want.Job.Queue, queue.DefaultQueue)
		if cur, ok := s.store.Periodic(want.Name); ok && cur.Periodic.Equal(&want) {
			continue
		}
		cmds = append(cmds, &queue.SetPeriodic{Periodic: want})
		names = append(names, want.Name)
	}
	s.applyConfig(ctx, cmds, names, "cannot apply periodic job config", "periodic")
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// runPeriodic fires the due ticks of every periodic job while this node
// leads. It keeps no state of its own: the FSM's last tick says what is
// due, and the FSM rejects a tick fired before (by this leader or the one
// before it), so every tick fires at most once; with catch-up none is
// skipped either.
func (s *Server) runPeriodic(ctx context.Context) {
	for {
		_, changed := s.store.Watch()
		now := time.Now()
		var next time.Time
		retry := false
		for _, p := range s.store.Periodics() {
			if tick, ok := p.Due(now); ok {
				if !s.fire(ctx, p.Name, tick) {
					retry = true
				}
				continue
			}
			if n := p.Next(now); !n.IsZero() && (next.IsZero() || n.Before(next)) {
				next = n
			}
		}
		wait := idleTick
		switch {
		case retry:
			wait = periodicRetry
		case !next.IsZero():
			// A tick is due once the clock reaches it.
			wait = min(max(time.Until(next)+time.Millisecond, time.Millisecond), idleTick)
		}
		if !sleep(ctx, wait, changed) {
			return
		}
	}
}

// fire applies one tick and reports whether the periodic job is settled
// for it (fired, skipped, or fired before).
func (s *Server) fire(ctx context.Context, name string, tick time.Time) bool {
	res, _, err := s.applier.Apply(ctx, &queue.FirePeriodic{Name: name, Tick: tick, ID: ulid.Make().String()})
	err = firstErr(err, res.Err)
	switch {
	case err == nil && res.Count == 0:
		s.logger.Info("periodic tick skipped: the last job has not finished", "periodic", name, "tick", tick)
	case err == nil:
		s.logger.Debug("periodic tick fired", "periodic", name, "tick", tick, "job", res.Submitted[0].ID)
	case errors.Is(err, queue.ErrAlreadyFired), errors.Is(err, queue.ErrPeriodicNotFound):
		// Fired by an earlier leader or deleted meanwhile: nothing to do.
	case ctx.Err() != nil:
	default:
		s.logger.Warn("cannot fire periodic tick", "periodic", name, "tick", tick, "error", err)
		return false
	}
	return true
}
