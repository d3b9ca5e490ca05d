package discovery

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
)

// leaderLoop is the leader side: one goroutine, started by LeaderStart and
// stopped by LeaderStop, that applies member changes to the raft
// configuration. It runs a full reconcile at once and every
// ReconcileInterval.
func (m *Manager) leaderLoop(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	m.reconcileAll()
	ticker := time.NewTicker(m.cfg.ReconcileInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case mem := <-m.reconcileCh:
			m.reconcileMember(mem)
		case id := <-m.removeCh:
			m.removeFailed(id)
		case <-ticker.C:
			m.reconcileAll()
		}
	}
}

// reconcileAll reconciles every Serf member; failed and left servers are
// reported to OnNodeFailed again, so a dropped event is never lost.
func (m *Manager) reconcileAll() {
	for _, mem := range m.agent.Members() {
		m.reconcileMember(mem)
	}
}

// reconcileMember brings one member's raft membership in line with its
// Serf status: alive servers are added, left servers removed, failed ones
// reported (autopilot removes them later).
func (m *Manager) reconcileMember(mem Member) {
	srv, ok := ParseServer(mem)
	if !ok || m.raft.State() != raft.Leader {
		return
	}
	live := m.liveServers()
	if other, ok := conflicting(srv, live); ok {
		// Gossip tags are claims: a member claiming a live member's id or
		// raft address is an impostor (or a misconfigured clone). Nothing
		// is added or removed in raft on its behalf.
		m.logger.Warn("ignoring member whose id or raft address conflicts with a live member",
			"node", srv.Name, "id", srv.ID, "address", srv.RaftAddr, "status", mem.Status,
			"live_node", other.Name, "live_id", other.ID, "live_address", other.RaftAddr)
		return
	}
	m.failures.observe(srv.ID, mem.Status)
	switch mem.Status {
	case StatusAlive:
		if err := m.addPeer(srv); err != nil {
			m.logger.Error("cannot add server to raft", "node", srv.Name, "id", srv.ID, "address", srv.RaftAddr, "error", err)
		}
	case StatusFailed:
		m.cfg.OnNodeFailed(srv.ID, srv.Name)
	case StatusLeft:
		if raft.ServerID(srv.ID) != m.self {
			if err := m.removeLeft(srv); err != nil {
				m.logger.Error("cannot remove left server from raft", "node", srv.Name, "id", srv.ID, "error", err)
			}
		}
		m.cfg.OnNodeFailed(srv.ID, srv.Name)
	}
}

// addPeer adds srv to raft as a non-voter unless it is already there with
// the same address. Stale entries with the same ID but another address, or
// the same address but another ID, are removed first (never this node, and
// never so many voters that quorum would be lost).
func (m *Manager) addPeer(srv Server) error {
	id, addr := raft.ServerID(srv.ID), raft.ServerAddress(srv.RaftAddr)
	cfg, err := m.configuration()
	if err != nil {
		return err
	}
	var (
		voters        int
		stale         []raft.Server
		staleVoters   int
		conflictsSelf bool
	)
	for _, s := range cfg.Servers {
		if s.Suffrage == raft.Voter {
			voters++
		}
		switch {
		case s.ID == id && s.Address == addr:
			return nil
		case s.ID == id || s.Address == addr:
			if s.ID == m.self {
				conflictsSelf = true
				continue
			}
			stale = append(stale, s)
			if s.Suffrage == raft.Voter {
				staleVoters++
			}
		}
	}
	if conflictsSelf {
		return fmt.Errorf("server %s at %s conflicts with this node's own id or address", id, addr)
	}
	if staleVoters > voters-(voters/2+1) {
		return fmt.Errorf("replacing %d stale voter entries of %d voters would lose quorum", staleVoters, voters)
	}
	for _, s := range stale {
		m.logger.Info("removing stale raft entry", "id", s.ID, "address", s.Address, "new_id", id, "new_address", addr)
		if err := m.raft.RemoveServer(s.ID, 0, 0).Error(); err != nil {
			return fmt.Errorf("remove stale entry %s (%s): %w", s.ID, s.Address, err)
		}
	}
	if err := m.raft.AddNonvoter(id, addr, 0, 0).Error(); err != nil {
		return fmt.Errorf("add non-voter: %w", err)
	}
	m.logger.Info("added server to raft as non-voter", "node", srv.Name, "id", id, "address", addr)
	return nil
}

// removePeer removes id from raft if it is in the configuration. It never
// removes this node.
func (m *Manager) removePeer(id raft.ServerID) error {
	if id == m.self {
		return nil
	}
	cfg, err := m.configuration()
	if err != nil {
		return err
	}
	for _, s := range cfg.Servers {
		if s.ID != id {
			continue
		}
		if err := m.raft.RemoveServer(id, 0, 0).Error(); err != nil {
			return fmt.Errorf("remove server %s: %w", id, err)
		}
		m.logger.Info("removed server from raft", "id", id, "address", s.Address)
		return nil
	}
	return nil
}

// removeFailed handles autopilot's dead-server cleanup decision.
func (m *Manager) removeFailed(id raft.ServerID) {
	if err := m.removePeer(id); err != nil {
		m.logger.Error("dead server cleanup failed", "id", id, "error", err)
	}
}

// liveServers returns the alive Corral servers in Serf, this node
// included.
func (m *Manager) liveServers() []Server {
	var members []Member
	switch {
	case m.members != nil:
		members = m.members()
	case m.agent != nil:
		members = m.agent.Members()
	}
	var out []Server
	for _, mem := range members {
		if srv, ok := ParseServer(mem); ok && mem.Status == StatusAlive {
			out = append(out, srv)
		}
	}
	return out
}

// conflicting returns a live server other than srv (another Serf name)
// that claims srv's id or raft address.
func conflicting(srv Server, live []Server) (Server, bool) {
	for _, other := range live {
		if other.Name != srv.Name && (other.ID == srv.ID || other.RaftAddr == srv.RaftAddr) {
			return other, true
		}
	}
	return Server{}, false
}

// removeLeft removes a server that left gracefully, with the guards of
// every removal path: only the raft entry with the member's own id and
// address (a left record claiming another address is not that entry's),
// and never a voter whose removal would leave fewer voters than
// max(1, min_quorum). (Removing a voter that is gone never lowers the
// live quorum; members claiming a live member's identity never get here.)
func (m *Manager) removeLeft(srv Server) error {
	id, addr := raft.ServerID(srv.ID), raft.ServerAddress(srv.RaftAddr)
	cfg, err := m.configuration()
	if err != nil {
		return err
	}
	var entry *raft.Server
	others := 0 // voters that stay
	for i, s := range cfg.Servers {
		switch {
		case s.ID == id:
			entry = &cfg.Servers[i]
		case s.Suffrage == raft.Voter:
			others++
		}
	}
	switch {
	case entry == nil:
		return nil
	case entry.Address != addr:
		return fmt.Errorf("left member %s claims raft address %s but the entry for %s is at %s: not removed", srv.Name, addr, id, entry.Address)
	case entry.Suffrage == raft.Voter && others < max(1, m.cfg.MinQuorum):
		return fmt.Errorf("removing voter %s would leave %d voters (min_quorum %d): not removed", id, others, m.cfg.MinQuorum)
	}
	return m.removePeer(id)
}
