package queue

import "io"

// SnapshotSummary describes a snapshot stream that decoded completely.
type SnapshotSummary struct {
	// Index is the raft index the state was captured at.
	Index uint64
	// Jobs is the number of jobs.
	Jobs int
	// Queues lists the queues with their counts per state, sorted by name.
	Queues []QueueInfo
}

// InspectSnapshot reads a whole snapshot stream written by Snapshot.WriteTo,
// checks it exactly as Restore would (format, every record, checksum) and
// summarises it. An error wraps ErrBadSnapshot.
func InspectSnapshot(r io.Reader) (SnapshotSummary, error) {
	st, err := readState(r)
	if err != nil {
		return SnapshotSummary{}, err
	}
	out := SnapshotSummary{Index: st.index, Jobs: len(st.jobs)}
	if len(st.queues) > 0 { // nil, not empty, without queues (as before)
		out.Queues = st.queueInfos()
	}
	return out, nil
}
