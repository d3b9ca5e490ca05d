package discovery

import (
	"errors"
	"fmt"
	"sort"

	"github.com/hashicorp/raft"
)

// bootstrapDecision is the outcome of looking at the member list for
// bootstrap: either a configuration to bootstrap with, or why not (yet).
type bootstrapDecision struct {
	// servers is set when the node should bootstrap now.
	servers []raft.Server
	// wait explains why not; empty when servers is set.
	wait string
	// peerBootstrapped is true when some visible server already has a
	// raft configuration: this node must join that cluster instead and
	// stops trying to bootstrap.
	peerBootstrapped bool
}

// decideBootstrap applies the bootstrap rule to the member list: at least
// expect alive servers, all advertising expect == expect, none already
// bootstrapped, and self among them. The configuration has every such
// server as a voter, sorted by ID so every node proposes the same one.
//
// Whether a server "already has raft peers" is read from its bootstrapped
// tag rather than asked over the network: the tag travels with the
// member's gossip state, so a node sees it as soon as it sees the member,
// and it is set from the first message by nodes that restart with raft
// state (AgentConfig.Bootstrapped) and by the Manager as soon as raft gets
// a configuration (bootstrap, or being added by a leader). The remaining
// race, several fresh nodes bootstrapping at once, is harmless because they
// all propose the identical configuration; raft's own ErrCantBootstrap
// stops a node that got state meanwhile.
func decideBootstrap(self string, expect int, members []Member) bootstrapDecision {
	var (
		servers  []Server
		haveSelf bool
	)
	for _, mem := range members {
		srv, ok := ParseServer(mem)
		if !ok || srv.Status != StatusAlive {
			continue
		}
		if srv.Bootstrapped {
			return bootstrapDecision{
				peerBootstrapped: true,
				wait:             fmt.Sprintf("server %s (%s) already has a raft configuration", srv.Name, srv.ID),
			}
		}
		servers = append(servers, srv)
		if srv.ID == self {
			haveSelf = true
		}
	}
	for _, srv := range servers {
		if !srv.ExpectOK || srv.Expect != expect {
			return bootstrapDecision{wait: fmt.Sprintf("server %s (%s) has bootstrap_expect %q, this node has %d; all servers must agree",
				srv.Name, srv.ID, srv.Member.Tags[TagExpect], expect)}
		}
	}
	if !haveSelf {
		return bootstrapDecision{wait: "this node is not yet an alive server in serf"}
	}
	if len(servers) < expect {
		return bootstrapDecision{wait: fmt.Sprintf("waiting for %d servers, have %d", expect, len(servers))}
	}
	sort.Slice(servers, func(i, j int) bool { return servers[i].ID < servers[j].ID })
	conf := make([]raft.Server, 0, len(servers))
	seen := make(map[string]bool, len(servers))
	for _, srv := range servers {
		if seen[srv.ID] {
			return bootstrapDecision{wait: fmt.Sprintf("two alive servers claim node id %s", srv.ID)}
		}
		seen[srv.ID] = true
		conf = append(conf, raft.Server{
			Suffrage: raft.Voter,
			ID:       raft.ServerID(srv.ID),
			Address:  raft.ServerAddress(srv.RaftAddr),
		})
	}
	return bootstrapDecision{servers: conf}
}

// checkBootstrap runs on the event loop: it bootstraps when the rule is
// met and advertises the bootstrapped tag once raft has a configuration.
func (m *Manager) checkBootstrap() {
	if !m.tagged || m.bootstrapPending {
		if m.hasConfiguration() {
			m.bootstrapPending = false
			m.markBootstrapped()
		}
	}
	if !m.bootstrapPending {
		return
	}
	d := decideBootstrap(string(m.self), m.cfg.BootstrapExpect, m.agent.Members())
	if d.peerBootstrapped {
		m.logger.Info("not bootstrapping: joining an existing cluster", "reason", d.wait)
		m.bootstrapPending = false
		return
	}
	if d.servers == nil {
		if d.wait != m.lastBootstrapMsg {
			m.lastBootstrapMsg = d.wait
			m.logger.Info("bootstrap waiting", "bootstrap_expect", m.cfg.BootstrapExpect, "reason", d.wait)
		}
		return
	}
	m.bootstrapPending = false
	m.logger.Info("bootstrapping raft cluster", "servers", d.servers)
	err := m.raft.BootstrapCluster(raft.Configuration{Servers: d.servers}).Error()
	switch {
	case err == nil:
		m.markBootstrapped()
	case errors.Is(err, raft.ErrCantBootstrap):
		m.logger.Info("raft already has state, bootstrap skipped")
		m.markBootstrapped()
	default:
		m.logger.Error("raft bootstrap failed, will retry", "error", err)
		m.bootstrapPending = true
	}
}

func (m *Manager) hasConfiguration() bool {
	cfg, err := m.configuration()
	return err == nil && len(cfg.Servers) > 0
}

func (m *Manager) markBootstrapped() {
	if m.tagged {
		return
	}
	if err := m.agent.setTag(TagBootstrapped, "1"); err != nil {
		m.logger.Warn("cannot advertise bootstrapped tag", "error", err)
		return
	}
	m.tagged = true
}
