package daemon

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/corral-dev/corral/daemon/config"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-uuid"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// raftNode bundles raft with the stores it owns so they close together.
type raftNode struct {
	raft      *raft.Raft
	transport *raft.NetworkTransport
	store     *raftboltdb.BoltStore
	snaps     raft.SnapshotStore
	// hadState is true when the data dir already held raft state at start:
	// such a node never bootstraps again.
	hadState bool
	// leaderCh receives every leadership change of this node, in order
	// (raft.Config.NotifyCh: unlike LeaderCh, it never drops a signal).
	leaderCh chan bool
}

// loadNodeID returns the node's permanent ID from data_dir/node-id,
// creating it (a UUID) on first start.
func loadNodeID(dataDir string) (string, error) {
	path := filepath.Join(dataDir, "node-id")
	b, err := os.ReadFile(path)
	if err == nil {
		id := strings.TrimSpace(string(b))
		if _, perr := uuid.ParseUUID(id); perr != nil {
			return "", fmt.Errorf("%s holds %q, not a UUID: fix or delete the file (deleting makes this a new node)", path, id)
		}
		return id, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read node id: %w", err)
	}
	id, err := uuid.GenerateUUID()
	if err != nil {
		return "", fmt.Errorf("generate node id: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(id+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write node id: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("write node id: %w", err)
	}
	return id, nil
}

// raftConfig builds the raft.Config from the agent config.
func raftConfig(cfg *config.Config, nodeID string, logger hclog.Logger) *raft.Config {
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(nodeID)
	rc.Logger = logger
	rc.ShutdownOnRemove = false
	if v := cfg.Raft.HeartbeatTimeout; v > 0 {
		rc.HeartbeatTimeout = v
	}
	if v := cfg.Raft.ElectionTimeout; v > 0 {
		rc.ElectionTimeout = v
	}
	if v := cfg.Raft.LeaderLeaseTimeout; v > 0 {
		rc.LeaderLeaseTimeout = v
	}
	if rc.LeaderLeaseTimeout > rc.HeartbeatTimeout {
		rc.LeaderLeaseTimeout = rc.HeartbeatTimeout
	}
	if v := cfg.Raft.SnapshotThreshold; v > 0 {
		rc.SnapshotThreshold = v
	}
	if v := cfg.Raft.SnapshotInterval; v > 0 {
		rc.SnapshotInterval = v
	}
	if v := cfg.Raft.TrailingLogs; v > 0 {
		rc.TrailingLogs = v
	}
	// A follower learns that an entry committed only from the leader's
	// next AppendEntries, sent at the latest CommitTimeout (staggered up
	// to 2x) after the last one. Raft's 50 ms default kept a job finished
	// on a quiet cluster invisible on followers for ~75 ms; the default
	// 15 ms costs ~1 % of a core per idle agent, 5 ms ~5 %.
	if v := cfg.Raft.CommitTimeout; v > 0 {
		rc.CommitTimeout = v
	}
	// Entries are already batches of commands; let raft send many per RPC.
	rc.MaxAppendEntries = 256
	return rc
}

// openRaft opens the raft stores under dataDir/raft and starts raft on a
// TCP transport bound to bind and advertised as advertise.
func openRaft(cfg *config.Config, dataDir, nodeID string, bind, advertise string, f raft.FSM, logger hclog.Logger) (*raftNode, error) {
	dir := filepath.Join(dataDir, "raft")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create raft dir: %w", err)
	}
	n := &raftNode{leaderCh: make(chan bool, 16)}
	ok := false
	defer func() {
		if !ok {
			n.close()
		}
	}()
	var err error
	n.store, err = raftboltdb.New(raftboltdb.Options{
		Path: filepath.Join(dir, "raft.db"),
		// A second agent on the same data dir fails fast instead of hanging.
		BoltOptions: boltOptions(),
	})
	if err != nil {
		return nil, fmt.Errorf("open %s (is another agent using this data dir?): %w", filepath.Join(dir, "raft.db"), err)
	}
	logs, err := raft.NewLogCache(128, n.store)
	if err != nil {
		return nil, fmt.Errorf("log cache: %w", err)
	}
	n.snaps, err = raft.NewFileSnapshotStoreWithLogger(dir, 2, logger.Named("snapshot"))
	if err != nil {
		return nil, fmt.Errorf("snapshot store: %w", err)
	}
	advAddr, err := net.ResolveTCPAddr("tcp", advertise)
	if err != nil {
		return nil, fmt.Errorf("raft advertise address %q: %w", advertise, err)
	}
	n.transport, err = raft.NewTCPTransportWithConfig(bind, advAddr, &raft.NetworkTransportConfig{
		Logger:  logger.Named("transport"),
		MaxPool: 3,
		Timeout: 10 * time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("raft transport on %s: %w", bind, err)
	}
	rc := raftConfig(cfg, nodeID, logger)
	rc.NotifyCh = n.leaderCh
	if err := recoverPeers(dir, rc, logs, n.store, n.snaps, n.transport, logger); err != nil {
		return nil, err
	}
	n.hadState, err = raft.HasExistingState(logs, n.store, n.snaps)
	if err != nil {
		return nil, fmt.Errorf("inspect raft state: %w", err)
	}
	n.raft, err = raft.NewRaft(rc, f, logs, n.store, n.snaps, n.transport)
	if err != nil {
		return nil, fmt.Errorf("start raft: %w", err)
	}
	ok = true
	return n, nil
}

// localAddr returns the advertised raft address.
func (n *raftNode) localAddr() raft.ServerAddress { return n.transport.LocalAddr() }

// close shuts raft down and closes its stores; safe on a partial node.
func (n *raftNode) close() error {
	var errs []error
	if n.raft != nil {
		if err := n.raft.Shutdown().Error(); err != nil {
			errs = append(errs, fmt.Errorf("raft shutdown: %w", err))
		}
	}
	if n.transport != nil {
		_ = n.transport.Close()
	}
	if n.store != nil {
		if err := n.store.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close raft store: %w", err))
		}
	}
	return errors.Join(errs...)
}
