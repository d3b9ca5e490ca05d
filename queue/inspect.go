package queue

import (
	"io"
	"sort"
)

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
	for _, q := range st.queues {
		counts := make(map[State]int, numStates-1)
		for s := StateScheduled; s <= StateBlocked; s++ {
			counts[s] = q.counts[s]
		}
		out.Queues = append(out.Queues, QueueInfo{Name: q.name, Config: q.cfg, Rate: q.rateLimit(), Counts: counts})
	}
	sort.Slice(out.Queues, func(i, j int) bool { return out.Queues[i].Name < out.Queues[j].Name })
	return out, nil
}
