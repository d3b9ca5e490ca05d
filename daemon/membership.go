package daemon

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/corral-dev/corral/discovery"
)

const (
	// retryJoinInterval is the wait between retry_join attempts.
	retryJoinInterval = 2 * time.Second
	// leaveTimeout bounds a graceful leave.
	leaveTimeout = 15 * time.Second
)

// startDiscovery starts the Serf agent and the membership manager that
// turns gossip membership into raft membership.
func (a *Agent) startDiscovery(bind, advertise string) error {
	var key []byte
	if a.cfg.Serf.Encrypt != "" {
		var err error
		if key, err = discovery.DecodeKey(a.cfg.Serf.Encrypt); err != nil {
			return fmt.Errorf("serf.encrypt: %w", err)
		}
	}
	port, err := portOrFree(bind, a.cfg.Ports.Serf)
	if err != nil {
		return fmt.Errorf("serf port: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(a.dataDir, "serf"), 0o700); err != nil {
		return fmt.Errorf("create serf dir: %w", err)
	}
	expect := a.cfg.Server.BootstrapExpect
	if a.cfg.Dev {
		expect = 1
	}
	ip := net.ParseIP(advertise)
	a.serf, err = discovery.NewAgent(discovery.AgentConfig{
		NodeName:        a.cfg.NodeName,
		NodeID:          a.nodeID,
		BindAddr:        bind,
		BindPort:        port,
		AdvertiseAddr:   advertise,
		Tags:            a.cfg.Tags,
		RaftAddr:        a.raftAddr,
		HTTPAddr:        a.httpAdvertise,
		BootstrapExpect: expect,
		Bootstrapped:    a.node.HadState(),
		Plugins:         a.localPluginNames(),
		EncryptKey:      key,
		SnapshotPath:    filepath.Join(a.dataDir, "serf", "local.snapshot"),
		RetryJoin:       a.cfg.Server.RetryJoin,
		RetryInterval:   retryJoinInterval,
		Logger:          a.logger,
		// Every node on loopback: one machine, use fast failure detection.
		Fast: ip != nil && ip.IsLoopback(),
	})
	if err != nil {
		return fmt.Errorf("serf: %w", err)
	}
	if expect == 1 {
		expect = 0 // bootstrapped directly by maybeBootstrapSingle
	}
	a.membership, err = discovery.NewManager(discovery.ManagerConfig{
		Raft:                    a.node.Raft,
		Agent:                   a.serf,
		NodeID:                  a.nodeID,
		RaftHasState:            a.node.HadState(),
		BootstrapExpect:         expect,
		MaxVoters:               a.cfg.Server.MaxVoters,
		ServerStabilizationTime: a.cfg.Server.ServerStabilizationTime,
		DeadServerCleanupAfter:  a.cfg.Server.DeadServerCleanupAfter,
		MinQuorum:               a.cfg.Server.MinQuorum,
		ReconcileInterval:       a.cfg.Server.ReconcileInterval,
		StatsFetcher:            a.fetchStats,
		OnNodeFailed: func(_, name string) {
			a.server.FailNode(a.ctx, name, "node "+name+" failed or left")
		},
		Logger: a.logger,
	})
	if err != nil {
		return fmt.Errorf("membership: %w", err)
	}
	a.server.SetMembership(a.membership)
	a.goRun(a.membership.Run)
	return nil
}
