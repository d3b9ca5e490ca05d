package raftnode

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/corral-dev/corral/queue"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// peersFile is the manual recovery file, data_dir/raft/peers.json, in
// hashicorp/raft's format: [{"id": "...", "address": "host:port",
// "non_voter": false}, ...].
const peersFile = "peers.json"

// recoverPeers performs manual outage recovery when raftDir holds
// peers.json: the raft configuration is replaced by the file's servers
// with raft.RecoverCluster (the log and snapshots are kept), then the file
// is deleted so that the next start is normal. It must run before
// raft.NewRaft on the same stores. Without the file it does nothing.
func recoverPeers(raftDir string, rc *raft.Config, logs raft.LogStore, stable raft.StableStore,
	snaps raft.SnapshotStore, trans raft.Transport, logger hclog.Logger) error {
	path := filepath.Join(raftDir, peersFile)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("peers recovery: %w", err)
	}
	conf, err := raft.ReadConfigJSON(path)
	if err != nil {
		return fmt.Errorf("peers recovery: read %s: %w", path, err)
	}
	self := false
	for _, s := range conf.Servers {
		self = self || s.ID == rc.LocalID
	}
	if !self {
		return fmt.Errorf("peers recovery: %s does not list this node (id %s); add it or remove the file", path, rc.LocalID)
	}
	logger.Warn("recovering raft configuration from peers.json", "path", path, "servers", conf.Servers)
	// RecoverCluster replays the log into an FSM to find the last state;
	// a throwaway one keeps the agent's store untouched (raft restores it
	// from the new snapshot when it starts).
	if err := raft.RecoverCluster(rc, &FSM{Store: queue.New()}, logs, stable, snaps, trans, conf); err != nil {
		return fmt.Errorf("peers recovery: %w", err)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("peers recovery succeeded but %s could not be deleted (delete it before the next start): %w", path, err)
	}
	logger.Info("raft configuration recovered; peers.json deleted", "servers", len(conf.Servers))
	return nil
}
