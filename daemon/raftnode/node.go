// Package raftnode runs this node's raft: the raft-boltdb log and stable
// store, the snapshot store, the transport, single-node bootstrap,
// peers.json recovery and the FSM adapter over the queue store. It knows
// nothing of what the entries mean.
package raftnode

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/corral-dev/corral/daemon/config"
	"github.com/corral-dev/corral/queue"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-uuid"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// Node is this node's raft with the stores it owns, so they close
// together.
type Node struct {
	// Raft is the running raft instance.
	Raft      *raft.Raft
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

// Config says where and how raft runs.
type Config struct {
	// DataDir is the agent's data dir; raft keeps raft/raft.db and
	// raft/snapshots/ under it.
	DataDir string
	// NodeID is the raft server ID (see LoadNodeID).
	NodeID string
	// Raft holds the timing settings of the config's raft block.
	Raft config.Raft
	// Layer, when set, carries raft's connections (the node port's mux);
	// otherwise raft listens on Bind itself.
	Layer raft.StreamLayer
	// Bind is the listen address (host:port) when Layer is nil.
	Bind string
	// Advertise is the raft address other nodes dial (host:port).
	Advertise string
}

// LoadNodeID returns the node's permanent ID from data_dir/node-id,
// creating it (a UUID) on first start.
func LoadNodeID(dataDir string) (string, error) {
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

// raftConfig builds the raft.Config from the config's raft block.
func raftConfig(cfg config.Raft, nodeID string, logger hclog.Logger) *raft.Config {
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(nodeID)
	rc.Logger = logger
	rc.ShutdownOnRemove = false
	if v := cfg.HeartbeatTimeout; v > 0 {
		rc.HeartbeatTimeout = v
	}
	if v := cfg.ElectionTimeout; v > 0 {
		rc.ElectionTimeout = v
	}
	if v := cfg.LeaderLeaseTimeout; v > 0 {
		rc.LeaderLeaseTimeout = v
	}
	if rc.LeaderLeaseTimeout > rc.HeartbeatTimeout {
		rc.LeaderLeaseTimeout = rc.HeartbeatTimeout
	}
	if v := cfg.SnapshotThreshold; v > 0 {
		rc.SnapshotThreshold = v
	}
	if v := cfg.SnapshotInterval; v > 0 {
		rc.SnapshotInterval = v
	}
	if v := cfg.TrailingLogs; v > 0 {
		rc.TrailingLogs = v
	}
	// A follower learns that an entry committed only from the leader's
	// next AppendEntries, sent at the latest CommitTimeout (staggered up
	// to 2x) after the last one. Raft's 50 ms default kept a job finished
	// on a quiet cluster invisible on followers for ~75 ms; the default
	// 15 ms costs ~1 % of a core per idle agent, 5 ms ~5 %.
	if v := cfg.CommitTimeout; v > 0 {
		rc.CommitTimeout = v
	}
	// Entries are already batches of commands; let raft send many per RPC.
	rc.MaxAppendEntries = 256
	return rc
}

// Open opens the raft stores under cfg.DataDir/raft and starts raft with
// store as its FSM. The caller closes the node.
func Open(cfg Config, store *queue.Store, logger hclog.Logger) (*Node, error) {
	dir := filepath.Join(cfg.DataDir, "raft")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create raft dir: %w", err)
	}
	n := &Node{leaderCh: make(chan bool, 16)}
	ok := false
	defer func() {
		if !ok {
			n.Close()
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
	tc := &raft.NetworkTransportConfig{Logger: logger.Named("transport"), MaxPool: 3, Timeout: 10 * time.Second}
	if cfg.Layer != nil {
		tc.Stream = cfg.Layer
		n.transport = raft.NewNetworkTransportWithConfig(tc)
	} else {
		advAddr, err := net.ResolveTCPAddr("tcp", cfg.Advertise)
		if err != nil {
			return nil, fmt.Errorf("raft advertise address %q: %w", cfg.Advertise, err)
		}
		if n.transport, err = raft.NewTCPTransportWithConfig(cfg.Bind, advAddr, tc); err != nil {
			return nil, fmt.Errorf("raft transport on %s: %w", cfg.Bind, err)
		}
	}
	rc := raftConfig(cfg.Raft, cfg.NodeID, logger)
	rc.NotifyCh = n.leaderCh
	if err := recoverPeers(dir, rc, logs, n.store, n.snaps, n.transport, logger); err != nil {
		return nil, err
	}
	n.hadState, err = raft.HasExistingState(logs, n.store, n.snaps)
	if err != nil {
		return nil, fmt.Errorf("inspect raft state: %w", err)
	}
	n.Raft, err = raft.NewRaft(rc, &FSM{Store: store}, logs, n.store, n.snaps, n.transport)
	if err != nil {
		return nil, fmt.Errorf("start raft: %w", err)
	}
	ok = true
	return n, nil
}

// LocalAddr returns the advertised raft address.
func (n *Node) LocalAddr() raft.ServerAddress { return n.transport.LocalAddr() }

// HadState reports whether the data dir held raft state at start: such a
// node never bootstraps again.
func (n *Node) HadState() bool { return n.hadState }

// LeaderCh receives true when this node becomes the leader and false when
// it stops being it, every change in order.
func (n *Node) LeaderCh() <-chan bool { return n.leaderCh }

// BootstrapSingle makes a one-server cluster of this node, once: a node
// with raft state never bootstraps again.
func (n *Node) BootstrapSingle(nodeID string) error {
	if n.hadState {
		return nil
	}
	err := n.Raft.BootstrapCluster(raft.Configuration{Servers: []raft.Server{{
		Suffrage: raft.Voter, ID: raft.ServerID(nodeID), Address: n.LocalAddr(),
	}}}).Error()
	if err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
		return fmt.Errorf("bootstrap: %w", err)
	}
	return nil
}

// Close shuts raft down and closes its stores; safe on a partial node.
func (n *Node) Close() error {
	var errs []error
	if n.Raft != nil {
		if err := n.Raft.Shutdown().Error(); err != nil {
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
