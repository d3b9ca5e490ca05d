package raftnode

import (
	"fmt"
	"io"

	"github.com/corral-dev/corral/queue"
	"github.com/hashicorp/raft"
)

// FSM adapts a queue.Store to raft.FSM. It only forwards: the rules live
// in the queue package.
type FSM struct {
	Store *queue.Store
}

var _ raft.FSM = (*FSM)(nil)

// ApplyResponse is what Apply returns to the leader's apply future: the
// results of the entry's commands, or the error that rejected the entry.
type ApplyResponse struct {
	Results []queue.Result
	Err     error
}

// Apply is called by raft's FSM goroutine, one entry at a time.
func (f *FSM) Apply(l *raft.Log) interface{} {
	if l.Type != raft.LogCommand {
		return nil
	}
	results, err := f.Store.Apply(l.Index, l.Data)
	return ApplyResponse{Results: results, Err: err}
}

// Snapshot captures the state on the FSM goroutine; the I/O happens in
// Persist, concurrently with later Applies.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	return &fsmSnapshot{snap: f.Store.Snapshot()}, nil
}

// Restore replaces the state from a snapshot; raft calls it with no
// concurrent Apply.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	if err := f.Store.Restore(rc); err != nil {
		return fmt.Errorf("restore queue snapshot: %w", err)
	}
	return nil
}

type fsmSnapshot struct {
	snap *queue.Snapshot
}

// Persist writes the captured state to the sink.
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := s.snap.WriteTo(sink); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("write queue snapshot: %w", err)
	}
	return sink.Close()
}

// Release is a no-op: the snapshot holds only immutable job pointers.
func (s *fsmSnapshot) Release() {}
