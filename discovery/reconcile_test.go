package discovery

import (
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// This file tests the leader's reconcile rules (addPeer, removePeer,
// reconcileMember) against a real raft group of three voters (BoltStore
// files, TCP transport on 127.0.0.1) without Serf or autopilot, so nothing
// but the rule under test changes the configuration.

// raftPeer is one member of a raft-only test group.
type raftPeer struct {
	id        raft.ServerID
	addr      raft.ServerAddress
	raft      *raft.Raft
	transport *raft.NetworkTransport
	store     *raftboltdb.BoltStore
	once      sync.Once
}

func (p *raftPeer) stop() {
	p.once.Do(func() {
		_ = p.raft.Shutdown().Error()
		_ = p.transport.Close()
		_ = p.store.Close()
	})
}

// raftGroup starts n raft voters bootstrapped together and returns them
// with the leader first.
func raftGroup(t *testing.T, n int) []*raftPeer {
	t.Helper()
	peers := make([]*raftPeer, n)
	var conf raft.Configuration
	for i := range peers {
		dir := t.TempDir()
		store, err := raftboltdb.NewBoltStore(filepath.Join(dir, "raft.db"))
		if err != nil {
			t.Fatalf("bolt store: %v", err)
		}
		snaps, err := raft.NewFileSnapshotStore(dir, 1, io.Discard)
		if err != nil {
			t.Fatalf("snapshot store: %v", err)
		}
		transport, err := raft.NewTCPTransport("127.0.0.1:0", nil, 3, 2*time.Second, io.Discard)
		if err != nil {
			t.Fatalf("raft transport: %v", err)
		}
		id := raft.ServerID("r" + string(rune('a'+i)))
		c := raft.DefaultConfig()
		c.LocalID = id
		c.HeartbeatTimeout = 300 * time.Millisecond
		c.ElectionTimeout = 300 * time.Millisecond
		c.LeaderLeaseTimeout = 150 * time.Millisecond
		c.CommitTimeout = 10 * time.Millisecond
		c.ShutdownOnRemove = false
		c.Logger = testLogger(string(id) + ".raft")
		r, err := raft.NewRaft(c, &trivialFSM{}, store, store, snaps, transport)
		if err != nil {
			t.Fatalf("new raft: %v", err)
		}
		p := &raftPeer{id: id, addr: transport.LocalAddr(), raft: r, transport: transport, store: store}
		t.Cleanup(p.stop)
		peers[i] = p
		conf.Servers = append(conf.Servers, raft.Server{Suffrage: raft.Voter, ID: id, Address: p.addr})
	}
	if err := peers[0].raft.BootstrapCluster(conf).Error(); err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	waitFor(t, 15*time.Second, "a leader every peer agrees on", func() bool {
		_, leader := peers[0].raft.LeaderWithID()
		if leader == "" {
			return false
		}
		for _, p := range peers {
			if _, id := p.raft.LeaderWithID(); id != leader {
				return false
			}
		}
		for i, p := range peers {
			if p.id == leader && p.raft.State() == raft.Leader {
				peers[0], peers[i] = peers[i], peers[0]
				return true
			}
		}
		return false
	})
	return peers
}

// leaderManager is a Manager on the group's leader with only what the
// reconcile rules use; failed records OnNodeFailed calls.
func leaderManager(leader *raftPeer, failed *[]string) *Manager {
	return &Manager{
		cfg: ManagerConfig{OnNodeFailed: func(id, _ string) {
			*failed = append(*failed, id)
		}},
		raft:     leader.raft,
		self:     leader.id,
		logger:   hclog.NewNullLogger(),
		failures: newFailureTracker(),
	}
}

// serverMember is the Serf member of a Corral server with this id and raft
// address.
func serverMember(id raft.ServerID, addr raft.ServerAddress, status MemberStatus) Member {
	return Member{Name: "n-" + string(id), Status: status, Tags: map[string]string{
		TagID: string(id), TagRaft: string(addr), TagRole: RoleServer,
	}}
}

// config returns r's raft configuration by server ID.
func config(t *testing.T, r *raft.Raft) map[raft.ServerID]raft.Server {
	t.Helper()
	f := r.GetConfiguration()
	if err := f.Error(); err != nil {
		t.Fatalf("get configuration: %v", err)
	}
	out := make(map[raft.ServerID]raft.Server)
	for _, s := range f.Configuration().Servers {
		out[s.ID] = s
	}
	return out
}

func sameConfig(a, b map[raft.ServerID]raft.Server) bool {
	if len(a) != len(b) {
		return false
	}
	for id, s := range a {
		if b[id] != s {
			return false
		}
	}
	return true
}

// TestAddPeerRules walks the join rules on a three-voter group: a known
// server is left alone; a server claiming this node's address is refused;
// a join that would replace a majority of voters is refused; a node that
// comes back with a new ID on an old address (wiped data dir) replaces the
// stale entry; a known non-voter on a new address is moved.
func TestAddPeerRules(t *testing.T) {
	peers := raftGroup(t, 3)
	leader, f1, f2 := peers[0], peers[1], peers[2]
	var failed []string
	m := leaderManager(leader, &failed)
	before := config(t, leader.raft)

	if err := m.addPeer(Server{ID: string(f1.id), RaftAddr: string(f1.addr)}); err != nil {
		t.Fatalf("re-adding a known server: %v", err)
	}
	if got := config(t, leader.raft); !sameConfig(got, before) {
		t.Fatalf("re-adding a known server changed the configuration: %v", got)
	}

	err := m.addPeer(Server{ID: "intruder", RaftAddr: string(leader.addr)})
	if err == nil || !strings.Contains(err.Error(), "conflicts with this node") {
		t.Fatalf("server on this node's address: err %v, want a conflict error", err)
	}
	if got := config(t, leader.raft); !sameConfig(got, before) {
		t.Fatalf("a server on this node's address changed the configuration: %v", got)
	}

	// f1's ID on f2's address: both voters would go, leaving one of three.
	err = m.addPeer(Server{ID: string(f1.id), RaftAddr: string(f2.addr)})
	if err == nil || !strings.Contains(err.Error(), "would lose quorum") {
		t.Fatalf("replacing 2 of 3 voters: err %v, want a quorum error", err)
	}
	if got := config(t, leader.raft); !sameConfig(got, before) {
		t.Fatalf("a refused join changed the configuration: %v", got)
	}

	// f2 loses its data dir and comes back on the same address with a new
	// ID: its old entry must go, or raft refuses the duplicate address and
	// the node can never rejoin.
	f2.stop()
	reborn := raft.ServerID("reborn")
	if err := m.addPeer(Server{ID: string(reborn), RaftAddr: string(f2.addr)}); err != nil {
		t.Fatalf("rejoin with a new id on an old address: %v", err)
	}
	want := map[raft.ServerID]raft.Server{
		leader.id: before[leader.id],
		f1.id:     before[f1.id],
		reborn:    {Suffrage: raft.Nonvoter, ID: reborn, Address: f2.addr},
	}
	if got := config(t, leader.raft); !sameConfig(got, want) {
		t.Fatalf("after the rejoin: %v, want %v", got, want)
	}

	// The same ID on a new address replaces the old entry.
	moved := raft.ServerAddress(freeAddr(t))
	if err := m.addPeer(Server{ID: string(reborn), RaftAddr: string(moved)}); err != nil {
		t.Fatalf("known non-voter on a new address: %v", err)
	}
	want[reborn] = raft.Server{Suffrage: raft.Nonvoter, ID: reborn, Address: moved}
	if got := config(t, leader.raft); !sameConfig(got, want) {
		t.Fatalf("after the move: %v, want %v", got, want)
	}
	if len(failed) != 0 {
		t.Fatalf("joins reported failures: %v", failed)
	}
}

// TestReconcileMemberRules: an alive server joins as a non-voter, a failed
// one is reported but stays (dead-server cleanup removes it later), a left
// one is removed at once, and this node is never removed.
func TestReconcileMemberRules(t *testing.T) {
	peers := raftGroup(t, 3)
	leader, f1, f2 := peers[0], peers[1], peers[2]
	var failed []string
	m := leaderManager(leader, &failed)
	before := config(t, leader.raft)

	newcomer := raft.ServerAddress(freeAddr(t))
	m.reconcileMember(serverMember("new", newcomer, StatusAlive))
	if got := config(t, leader.raft)["new"]; got != (raft.Server{Suffrage: raft.Nonvoter, ID: "new", Address: newcomer}) {
		t.Fatalf("alive newcomer in the configuration as %+v, want a non-voter", got)
	}

	m.reconcileMember(serverMember(f2.id, f2.addr, StatusFailed))
	if got := config(t, leader.raft)[f2.id]; got != before[f2.id] {
		t.Fatalf("failed server removed at once: %+v", got)
	}
	if len(failed) != 1 || failed[0] != string(f2.id) {
		t.Fatalf("OnNodeFailed calls %v, want [%s]", failed, f2.id)
	}

	m.reconcileMember(serverMember(f1.id, f1.addr, StatusLeft))
	if _, ok := config(t, leader.raft)[f1.id]; ok {
		t.Fatalf("left server %s still in the configuration", f1.id)
	}
	if len(failed) != 2 || failed[1] != string(f1.id) {
		t.Fatalf("OnNodeFailed calls %v, want the left server too", failed)
	}

	// A stale "left" record of this very node (it left and came back) must
	// not make the leader remove itself, by either path.
	m.reconcileMember(serverMember(leader.id, leader.addr, StatusLeft))
	if err := m.removePeer(leader.id); err != nil {
		t.Fatalf("removePeer(self): %v", err)
	}
	if got := config(t, leader.raft)[leader.id]; got != before[leader.id] || leader.raft.State() != raft.Leader {
		t.Fatalf("leader removed itself: entry %+v, state %s", got, leader.raft.State())
	}

	// A follower reconciles nothing.
	var followerFailed []string
	fm := leaderManager(f2, &followerFailed)
	fm.reconcileMember(serverMember("other", raft.ServerAddress(freeAddr(t)), StatusAlive))
	fm.reconcileMember(serverMember(f2.id, f2.addr, StatusFailed))
	if _, ok := config(t, leader.raft)["other"]; ok || len(followerFailed) != 0 {
		t.Fatalf("a follower reconciled members (failed calls %v)", followerFailed)
	}
}

// freeAddr returns a 127.0.0.1 address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}
