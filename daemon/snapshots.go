package daemon

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/corral-dev/corral/daemon/httpapi"
	"github.com/corral-dev/corral/daemon/server"
	"github.com/corral-dev/corral/daemon/snapshot"
	"github.com/hashicorp/raft"
)

// snapshotTimeout bounds the raft side of a save or restore.
const snapshotTimeout = 2 * time.Minute

// snapshots saves and restores the cluster state for the HTTP API, through
// raft's user snapshot and restore on this node (the leader).
type snapshots struct{ a *Agent }

var _ httpapi.Snapshots = snapshots{}

// Save implements httpapi.Snapshots.
func (s snapshots) Save(ctx context.Context, w io.Writer) error {
	if s.a.node.Raft.State() != raft.Leader {
		return server.ErrNotLeader
	}
	meta, err := snapshot.Save(s.a.node.Raft, w, snapshotTimeout)
	if err != nil {
		return err
	}
	s.a.logger.Info("snapshot saved", "index", meta.Index, "term", meta.Term, "bytes", meta.Size)
	return nil
}

// Restore implements httpapi.Snapshots: the archive is verified in full
// (into a temporary file in the data dir) before raft sees it.
func (s snapshots) Restore(ctx context.Context, r io.Reader) error {
	v, err := snapshot.Verify(r, s.a.dataDir)
	if err != nil {
		return err
	}
	defer v.Close()
	if s.a.node.Raft.State() != raft.Leader {
		return server.ErrNotLeader
	}
	if err := snapshot.Restore(s.a.node.Raft, v, snapshotTimeout); err != nil {
		return fmt.Errorf("restore snapshot: %w", err)
	}
	s.a.logger.Info("snapshot restored", "from_index", v.Index, "jobs", v.State.Jobs, "queues", len(v.State.Queues))
	return nil
}
