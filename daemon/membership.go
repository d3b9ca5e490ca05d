package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/corral-dev/corral/daemon/api"
	"github.com/corral-dev/corral/discovery"
	"github.com/corral-dev/corral/queue"
	autopilot "github.com/hashicorp/raft-autopilot"
)

const (
	// retryJoinInterval is the wait between retry_join attempts.
	retryJoinInterval = 2 * time.Second
	// statsTimeout bounds autopilot's call to a server's stats endpoint.
	statsTimeout = time.Second
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
	a.membersFn = a.gossipMembers
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
		OnNodeFailed:            a.onNodeFailed,
		Logger:                  a.logger,
	})
	if err != nil {
		return fmt.Errorf("membership: %w", err)
	}
	a.goRun(a.membership.Run)
	return nil
}

// gossipMembers converts Serf's member list.
func (a *Agent) gossipMembers() []member {
	ms := a.serf.Members()
	out := make([]member, len(ms))
	for i, m := range ms {
		out[i] = member{Name: m.Name, Addr: m.GossipAddr(), Status: m.Status.String(), Tags: m.Tags}
	}
	return out
}

// onNodeFailed re-queues the jobs of a failed or departed node at once
// (fencing makes any late report from it harmless). It runs on the leader
// and may be called repeatedly for the same node.
func (a *Agent) onNodeFailed(nodeID, nodeName string) {
	if len(a.store.Running(nodeName)) == 0 {
		return
	}
	a.goRun(func(ctx context.Context) {
		res, _, err := a.applier.Apply(ctx, &queue.FailNode{Node: nodeName, Reason: "node " + nodeName + " failed or left"})
		if err = firstErr(err, res.Err); err != nil {
			a.logger.Warn("cannot re-queue jobs of failed node", "node", nodeName, "error", err)
			return
		}
		a.logger.Info("re-queued jobs of failed node", "node", nodeName, "jobs", res.Count)
	})
}

// fetchStats asks a server for its raft stats, for autopilot's health
// checks.
func (a *Agent) fetchStats(ctx context.Context, m discovery.Member) (*autopilot.ServerStats, error) {
	if m.Tags[discovery.TagID] == a.nodeID {
		return discovery.LocalStats(a.node.Raft)
	}
	addr := m.Tags[discovery.TagHTTP]
	if addr == "" {
		return nil, fmt.Errorf("member %s advertises no http address", m.Name)
	}
	ctx, cancel := context.WithTimeout(ctx, statsTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/v1/internal/stats", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("stats of %s: %w", m.Name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("stats of %s: %s", m.Name, resp.Status)
	}
	var st autopilot.ServerStats
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return nil, fmt.Errorf("stats of %s: %w", m.Name, err)
	}
	return &st, nil
}

// handleStats serves GET /v1/internal/stats (autopilot health).
func (a *Agent) handleStats(w http.ResponseWriter, r *http.Request) {
	st, err := discovery.LocalStats(a.node.Raft)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, st, 0)
}

// handleMembers serves GET /v1/members (the Serf view).
func (a *Agent) handleMembers(w http.ResponseWriter, r *http.Request) {
	out := []api.Member{}
	for _, m := range a.members() {
		out = append(out, api.Member{Name: m.Name, Addr: m.Addr, Status: m.Status, Tags: m.Tags})
	}
	writeJSON(w, http.StatusOK, out, 0)
}

// httpAdvertiseAddr is the HTTP address other nodes use.
func httpAdvertiseAddr(advertise string, ln net.Listener) string {
	return net.JoinHostPort(advertise, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
}
