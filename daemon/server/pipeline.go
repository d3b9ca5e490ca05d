package server

import "context"

// pipeline counts the batches a group-commit loop (the applier) has in
// flight: raft entries handed over and not yet applied.
type pipeline struct {
	slots chan struct{} // one token per batch in flight
	freed chan struct{} // signalled when a batch ends
}

func newPipeline(depth int) pipeline {
	return pipeline{slots: make(chan struct{}, depth), freed: make(chan struct{}, 1)}
}

// acquire takes a slot for a new batch; false when ctx ended first.
func (p pipeline) acquire(ctx context.Context) bool {
	select {
	case p.slots <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

// release ends a batch and wakes a gather waiting on it.
func (p pipeline) release() {
	<-p.slots
	select {
	case p.freed <- struct{}{}:
	default:
	}
}

// busy reports whether a batch is in flight.
func (p pipeline) busy() bool { return len(p.slots) > 0 }

// gather grows batch from in. Whatever is already waiting joins it. Then,
// while nothing is in flight, the batch goes at once (lowest latency when
// idle); while a batch is in flight, it keeps growing until that batch
// ends or it weighs full. So closed-loop traffic shares one round trip per
// batch instead of paying one each, and a backlog still fills the
// pipeline with large batches. max caps the number of items.
func gather[T any](ctx context.Context, in <-chan T, batch []T, max, full int, weigh func(T) int, p pipeline) []T {
	weight := 0
	for _, x := range batch {
		weight += weigh(x)
	}
	for len(batch) < max {
		select {
		case x := <-in:
			batch = append(batch, x)
			weight += weigh(x)
			continue
		default:
		}
		if !p.busy() || weight >= full {
			return batch
		}
		select {
		case x := <-in:
			batch = append(batch, x)
			weight += weigh(x)
		case <-p.freed:
		case <-ctx.Done():
			return batch
		}
	}
	return batch
}
