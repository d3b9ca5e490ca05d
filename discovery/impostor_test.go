package discovery

import (
	"testing"

	"github.com/hashicorp/raft"
)

// TestImpostorMembersIgnored replays issue 11's gossip attack on the
// reconcile rules of a three-voter group: impostor members claim a live
// follower's id with a bogus raft address (alive, then left), or a live
// follower's raft address with a new id. None of them is added, and no
// real voter is removed on their behalf. A left record whose address is
// not its id's raft entry is not acted on either.
func TestImpostorMembersIgnored(t *testing.T) {
	peers := raftGroup(t, 3)
	leader, f1, f2 := peers[0], peers[1], peers[2]
	var failed []string
	m := leaderManager(leader, &failed)
	real := []Member{
		serverMember(leader.id, leader.addr, StatusAlive),
		serverMember(f1.id, f1.addr, StatusAlive),
		serverMember(f2.id, f2.addr, StatusAlive),
	}
	bogus := raft.ServerAddress(freeAddr(t))
	sameID := Member{Name: "impostor-1", Status: StatusAlive, Tags: map[string]string{TagID: string(f1.id), TagRaft: string(bogus), TagRole: RoleServer}}
	sameAddr := Member{Name: "impostor-2", Status: StatusAlive, Tags: map[string]string{TagID: "fresh-id", TagRaft: string(f2.addr), TagRole: RoleServer}}
	members := append(append([]Member(nil), real...), sameID, sameAddr)
	m.members = func() []Member { return members }
	before := config(t, leader.raft)

	m.reconcileMember(sameID)
	m.reconcileMember(sameAddr)
	if after := config(t, leader.raft); !sameConfig(before, after) {
		t.Fatalf("alive impostors changed the configuration:\n before %v\n after  %v", before, after)
	}
	// The impostors leave: the real voters stay.
	sameID.Status, sameAddr.Status = StatusLeft, StatusLeft
	members = append(append([]Member(nil), real...), sameID, sameAddr)
	m.reconcileMember(sameID)
	m.reconcileMember(sameAddr)
	if after := config(t, leader.raft); !sameConfig(before, after) {
		t.Fatalf("left impostors changed the configuration:\n before %v\n after  %v", before, after)
	}
	if len(failed) != 0 {
		t.Fatalf("impostors reported failed nodes %v (their jobs would be re-queued)", failed)
	}

	// f2 really is gone (not alive in Serf); a left record claiming its id
	// with another address still does not remove its entry.
	members = []Member{real[0], real[1]}
	m.reconcileMember(Member{Name: "impostor-3", Status: StatusLeft, Tags: map[string]string{TagID: string(f2.id), TagRaft: string(bogus), TagRole: RoleServer}})
	if _, ok := config(t, leader.raft)[f2.id]; !ok {
		t.Fatalf("a left record with a wrong address removed %s", f2.id)
	}
	// Its own left record (same id and address) removes it.
	m.reconcileMember(serverMember(f2.id, f2.addr, StatusLeft))
	if _, ok := config(t, leader.raft)[f2.id]; ok {
		t.Fatalf("%s still in the configuration after its own leave", f2.id)
	}
}

// TestLeftRemovalKeepsMinQuorum: a left voter is not removed when that
// would leave fewer voters than min_quorum.
func TestLeftRemovalKeepsMinQuorum(t *testing.T) {
	peers := raftGroup(t, 3)
	leader, f1 := peers[0], peers[1]
	var failed []string
	m := leaderManager(leader, &failed)
	m.cfg.MinQuorum = 3
	m.reconcileMember(serverMember(f1.id, f1.addr, StatusLeft))
	if _, ok := config(t, leader.raft)[f1.id]; !ok {
		t.Fatalf("left voter removed below min_quorum 3")
	}
	m.cfg.MinQuorum = 2
	m.reconcileMember(serverMember(f1.id, f1.addr, StatusLeft))
	if _, ok := config(t, leader.raft)[f1.id]; ok {
		t.Fatalf("left voter kept although 2 voters stay (min_quorum 2)")
	}
}
