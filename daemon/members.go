package daemon

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/corral-dev/corral/daemon/api"
	"github.com/corral-dev/corral/daemon/httpapi"
	"github.com/corral-dev/corral/discovery"
	"github.com/corral-dev/corral/plugins/host"
	"github.com/hashicorp/raft"
)

// cluster is this node's view of the cluster, for the HTTP API: raft
// state from raftnode, members from gossip.
type cluster struct{ a *Agent }

var _ httpapi.Cluster = cluster{}

// Self implements httpapi.Cluster.
func (c cluster) Self() api.Self {
	a := c.a
	r := a.node.Raft
	stats := r.Stats()
	_, leaderID := r.LeaderWithID()
	term, _ := strconv.ParseUint(stats["term"], 10, 64)
	return api.Self{
		Node: a.cfg.NodeName, ID: a.nodeID, State: stateName(r.State()), Leader: string(leaderID),
		Term: term, LastIndex: r.LastIndex(), AppliedIndex: r.AppliedIndex(), Stats: stats, Version: Version,
	}
}

func stateName(s raft.RaftState) string {
	switch s {
	case raft.Leader:
		return "leader"
	case raft.Follower:
		return "follower"
	case raft.Candidate:
		return "candidate"
	}
	return "shutdown"
}

// Leader implements httpapi.Cluster.
func (c cluster) Leader() api.Leader {
	addr, id := c.a.node.Raft.LeaderWithID()
	out := api.Leader{ID: string(id), Address: string(addr)}
	if id != "" {
		out.Node = c.a.nodeName(string(id))
		out.HTTP, _ = c.a.httpAddrOf(string(id))
	}
	return out
}

// Members implements httpapi.Cluster.
func (c cluster) Members() []api.Member {
	if c.a.serf == nil {
		return nil
	}
	var out []api.Member
	for _, m := range c.a.serf.Members() {
		out = append(out, api.Member{Name: m.Name, Addr: m.GossipAddr(), Status: m.Status.String(), Tags: m.Tags})
	}
	return out
}

// RaftConfiguration implements httpapi.Cluster.
func (c cluster) RaftConfiguration() (api.RaftConfiguration, error) {
	r := c.a.node.Raft
	fut := r.GetConfiguration()
	if err := fut.Error(); err != nil {
		return api.RaftConfiguration{}, err
	}
	_, leaderID := r.LeaderWithID()
	out := api.RaftConfiguration{Index: fut.Index(), Servers: []api.RaftServer{}}
	for _, s := range fut.Configuration().Servers {
		out.Servers = append(out.Servers, api.RaftServer{
			ID: string(s.ID), Node: c.a.nodeName(string(s.ID)), Address: string(s.Address),
			Leader: s.ID == leaderID, Voter: s.Suffrage == raft.Voter,
		})
	}
	return out, nil
}

// RemovePeer implements httpapi.Cluster.
func (c cluster) RemovePeer(ctx context.Context, id string) error {
	return c.a.server.RemovePeer(id)
}

// Leave implements httpapi.Cluster.
func (c cluster) Leave() {
	go func() {
		if err := c.a.Leave(); err != nil {
			c.a.logger.Error("leave failed", "error", err)
		}
	}()
}

// Staleness implements httpapi.Cluster.
func (c cluster) Staleness() (bool, time.Duration) {
	r := c.a.node.Raft
	addr, _ := r.LeaderWithID()
	if r.State() == raft.Leader {
		return true, 0
	}
	return addr != "", time.Since(r.LastContact())
}

// Replayed implements httpapi.Cluster.
func (c cluster) Replayed() (bool, uint64, uint64) {
	applied := c.a.node.Raft.AppliedIndex()
	return applied >= c.a.startIndex, applied, c.a.startIndex
}

// Nodes implements httpapi.Cluster: alive gossip members, or just this
// node before gossip runs.
func (c cluster) Nodes() []httpapi.Node {
	a := c.a
	var out []httpapi.Node
	if a.serf != nil {
		for _, m := range a.serf.Members() {
			if m.Status.String() != "alive" {
				continue
			}
			var ps []string
			if s := m.Tags[discovery.TagPlugins]; s != "" {
				ps = strings.Split(s, ",")
			}
			out = append(out, httpapi.Node{Name: m.Name, Plugins: ps, Tags: m.Tags})
		}
	}
	if len(out) == 0 {
		out = append(out, httpapi.Node{Name: a.cfg.NodeName, Plugins: a.localPluginNames(), Tags: a.cfg.Tags})
	}
	return out
}

// pluginList lists this node's plugins for the HTTP API.
type pluginList struct{ a *Agent }

// Plugins implements httpapi.Plugins.
func (p pluginList) Plugins() []api.Plugin {
	if p.a.plugins == nil {
		return nil
	}
	var out []api.Plugin
	for _, st := range p.a.plugins.Plugins() {
		out = append(out, api.Plugin{
			Name: st.Name, Version: st.Version, Description: st.Description, Path: st.Path,
			Builtin: st.Builtin, Status: st.Status.String(), Error: st.Error,
			Concurrency: st.Concurrency, Running: st.Running, PID: st.PID, Restarts: st.Restarts,
		})
	}
	return out
}

// localPluginNames lists the plugins this node can run (a crashed plugin
// that is being restarted counts).
func (a *Agent) localPluginNames() []string {
	if a.plugins == nil {
		return nil
	}
	var names []string
	for _, st := range a.plugins.Plugins() {
		if st.Status == host.StateReady || st.Status == host.StateRestarting {
			names = append(names, st.Name)
		}
	}
	return names
}

// memberByID finds the gossip member that advertises server ID id.
func (a *Agent) memberByID(id string) (discovery.Member, bool) {
	if a.serf == nil {
		return discovery.Member{}, false
	}
	for _, m := range a.serf.Members() {
		if m.Tags[discovery.TagID] == id {
			return m, true
		}
	}
	return discovery.Member{}, false
}

// nodeName returns the node name of a server ID, or the ID when unknown.
func (a *Agent) nodeName(id string) string {
	if id == a.nodeID {
		return a.cfg.NodeName
	}
	if m, ok := a.memberByID(id); ok {
		return m.Name
	}
	return id
}

// httpAddrOf returns the HTTP address a server advertises.
func (a *Agent) httpAddrOf(id string) (string, bool) {
	if id == a.nodeID {
		return a.httpAdvertise, true
	}
	m, ok := a.memberByID(id)
	if !ok || m.Tags[discovery.TagHTTP] == "" {
		return "", false
	}
	return m.Tags[discovery.TagHTTP], true
}

// raftAddrOfNode returns the node-port address of the node with that name.
func (a *Agent) raftAddrOfNode(name string) (string, bool) {
	if name == a.cfg.NodeName {
		return a.raftAddr, true
	}
	if a.serf == nil {
		return "", false
	}
	for _, m := range a.serf.Members() {
		if m.Name == name && m.Tags[discovery.TagRaft] != "" {
			return m.Tags[discovery.TagRaft], true
		}
	}
	return "", false
}
