package worker

import (
	"context"
	"errors"
	"io"
	"os"
	"time"

	"github.com/corral-dev/corral/queue"
)

const (
	// followPoll is how often a followed log checks for new lines.
	followPoll = 200 * time.Millisecond
	// unknownAttemptWait is how long a followed log waits for an attempt
	// this node has not heard of yet: the asking node may have seen the
	// claim before this node's replica and worker did.
	unknownAttemptWait = 2 * time.Second
)

// Replica is the local replica of the queue, as the worker reads it.
type Replica interface {
	Get(id string) (*queue.Job, bool)
}

// CopyLog copies an attempt's log on this node to out, following it while
// the attempt runs when follow is set; flush is called after each chunk.
// An attempt that printed nothing has no file and gives an empty log.
func (w *Worker) CopyLog(ctx context.Context, replica Replica, id string, attempt int, follow bool, out io.Writer, flush func()) error {
	f, err := w.logs.open(id, attempt)
	behindUntil := time.Now().Add(unknownAttemptWait)
	for errors.Is(err, os.ErrNotExist) && follow && w.mayLog(replica, id, attempt, behindUntil) {
		// Claimed but not started yet: the log file comes in a moment.
		select {
		case <-time.After(followPoll):
		case <-ctx.Done():
			return nil
		}
		f, err = w.logs.open(id, attempt)
	}
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	for {
		if _, err := io.Copy(out, f); err != nil {
			return nil // the reader went away
		}
		flush()
		if !follow || !w.attemptRunning(replica, id, attempt) {
			// One last copy catches lines written just before the end.
			_, _ = io.Copy(out, f)
			flush()
			return nil
		}
		select {
		case <-time.After(followPoll):
		case <-ctx.Done():
			return nil
		}
	}
}

// mayLog reports whether attempt of the job may still write its first log
// line here: it runs, or, until behindUntil, this node has not yet heard
// of it.
func (w *Worker) mayLog(replica Replica, id string, attempt int, behindUntil time.Time) bool {
	if w.attemptRunning(replica, id, attempt) {
		return true
	}
	j, ok := replica.Get(id)
	return (!ok || j.Attempt < attempt) && time.Now().Before(behindUntil)
}

// attemptRunning reports whether attempt of the job still runs: on this
// node's worker (which knows before the replica does), or per the
// replicated state.
func (w *Worker) attemptRunning(replica Replica, id string, attempt int) bool {
	if w.Runs(id, attempt) {
		return true
	}
	j, ok := replica.Get(id)
	return ok && j.State == queue.StateRunning && j.Attempt == attempt
}
