package discovery

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	autopilot "github.com/hashicorp/raft-autopilot"
)

func member(id string, expect string, status MemberStatus, extra ...string) Member {
	tags := map[string]string{TagID: id, TagRaft: "10.0.0.1:" + id, TagRole: RoleServer, TagExpect: expect}
	for i := 0; i+1 < len(extra); i += 2 {
		tags[extra[i]] = extra[i+1]
	}
	return Member{Name: "n-" + id, Status: status, Tags: tags}
}

func TestDecideBootstrap(t *testing.T) {
	three := []Member{member("c", "3", StatusAlive), member("a", "3", StatusAlive), member("b", "3", StatusAlive)}
	d := decideBootstrap("a", 3, three)
	want := []raft.Server{
		{Suffrage: raft.Voter, ID: "a", Address: "10.0.0.1:a"},
		{Suffrage: raft.Voter, ID: "b", Address: "10.0.0.1:b"},
		{Suffrage: raft.Voter, ID: "c", Address: "10.0.0.1:c"},
	}
	if !reflect.DeepEqual(d.servers, want) {
		t.Fatalf("servers = %v, want %v (sorted by id)", d.servers, want)
	}
	// Every node proposes the same configuration.
	if d2 := decideBootstrap("c", 3, three); !reflect.DeepEqual(d2.servers, want) {
		t.Fatalf("node c proposes %v", d2.servers)
	}

	cases := []struct {
		name    string
		members []Member
		wait    string
		peer    bool
	}{
		{"too few", three[:2], "waiting for 3 servers, have 2", false},
		{"failed does not count", []Member{three[0], three[1], member("b", "3", StatusFailed)}, "waiting for 3", false},
		{"mismatch", []Member{three[0], three[1], member("b", "5", StatusAlive)}, `bootstrap_expect "5"`, false},
		{"missing expect", []Member{three[0], three[1], member("b", "", StatusAlive)}, "must agree", false},
		{"peer bootstrapped", []Member{three[0], three[1], member("b", "3", StatusAlive, TagBootstrapped, "1")}, "already has a raft configuration", true},
		{"self missing", []Member{three[0], three[2], member("d", "3", StatusAlive)}, "this node is not yet", false},
		{"not a server", []Member{three[0], three[1], {Name: "x", Status: StatusAlive, Tags: map[string]string{TagID: "b"}}}, "waiting for 3", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := decideBootstrap("a", 3, tc.members)
			if d.servers != nil || !strings.Contains(d.wait, tc.wait) || d.peerBootstrapped != tc.peer {
				t.Fatalf("decision = %+v, want wait containing %q, peer %v", d, tc.wait, tc.peer)
			}
		})
	}
}

func stateWith(now time.Time, servers map[raft.ServerID]autopilot.RaftState, stableFor map[raft.ServerID]time.Duration) *autopilot.State {
	s := &autopilot.State{Servers: map[raft.ServerID]*autopilot.ServerState{}}
	for id, st := range servers {
		s.Servers[id] = &autopilot.ServerState{
			Server: autopilot.Server{ID: id},
			State:  st,
			Health: autopilot.ServerHealth{Healthy: true, StableSince: now.Add(-stableFor[id])},
		}
		if st == autopilot.RaftVoter || st == autopilot.RaftLeader {
			s.Voters = append(s.Voters, id)
		}
	}
	return s
}

func TestPromoterCapsVoters(t *testing.T) {
	now := time.Now()
	conf := &autopilot.Config{ServerStabilizationTime: 0}
	p := &promoter{maxVoters: 3, failures: newFailureTracker()}
	s := stateWith(now,
		map[raft.ServerID]autopilot.RaftState{"a": autopilot.RaftLeader, "b": autopilot.RaftVoter, "c": autopilot.RaftNonVoter, "d": autopilot.RaftNonVoter},
		map[raft.ServerID]time.Duration{"c": time.Second, "d": time.Minute})
	got := p.CalculatePromotionsAndDemotions(conf, s).Promotions
	if !reflect.DeepEqual(got, []raft.ServerID{"d"}) {
		t.Fatalf("promotions = %v, want only the longest-stable non-voter d", got)
	}
	s.Servers["c"].State = autopilot.RaftVoter
	if got := p.CalculatePromotionsAndDemotions(conf, s).Promotions; len(got) != 0 {
		t.Fatalf("promotions at max voters = %v, want none", got)
	}
}

func TestPromoterFiltersRemovals(t *testing.T) {
	now := time.Now()
	ft := newFailureTracker()
	clock := now
	ft.now = func() time.Time { return clock }
	p := &promoter{maxVoters: 5, cleanupAfter: 30 * time.Second, self: "a", failures: ft, logger: hclog.NewNullLogger()}
	s := stateWith(now, map[raft.ServerID]autopilot.RaftState{
		"a": autopilot.RaftLeader, "b": autopilot.RaftVoter, "c": autopilot.RaftVoter, "d": autopilot.RaftVoter, "e": autopilot.RaftVoter,
	}, nil)
	failedSrv := func(id string, st autopilot.NodeStatus) *autopilot.Server {
		return &autopilot.Server{ID: raft.ServerID(id), NodeStatus: st}
	}
	// "a" is this node: failed in Serf's view and first in the list, it
	// would be picked first were it not for the never-self rule.
	ft.observe("a", StatusFailed)
	ft.observe("b", StatusFailed)
	ft.observe("c", StatusFailed)
	ft.observe("d", StatusFailed)
	in := &autopilot.FailedServers{
		FailedVoters: []*autopilot.Server{failedSrv("a", autopilot.NodeFailed), failedSrv("b", autopilot.NodeFailed), failedSrv("c", autopilot.NodeFailed), failedSrv("d", autopilot.NodeFailed)},
		StaleVoters:  []raft.ServerID{"a", "x"},
	}
	if out := p.FilterFailedServerRemovals(nil, s, in); len(out.FailedVoters)+len(out.StaleVoters) != 0 {
		t.Fatalf("removed before cleanup time: %+v", out)
	}
	clock = now.Add(31 * time.Second)
	out := p.FilterFailedServerRemovals(nil, s, in)
	// 5 voters: at most (5-1)/2 = 2 removals, never self ("a").
	var ids []raft.ServerID
	for _, srv := range out.FailedVoters {
		ids = append(ids, srv.ID)
	}
	if len(out.StaleVoters)+len(ids) != 2 || !reflect.DeepEqual(out.StaleVoters, []raft.ServerID{"x"}) || !reflect.DeepEqual(ids, []raft.ServerID{"b"}) {
		t.Fatalf("removals = stale %v failed %v, want stale [x] failed [b]", out.StaleVoters, ids)
	}

	p.minQuorum = 4
	out = p.FilterFailedServerRemovals(nil, s, in)
	if len(out.StaleVoters)+len(out.FailedVoters) != 1 {
		t.Fatalf("min_quorum 4 of 5 voters allows one removal, got %+v", out)
	}

	// A left server goes at once; a failed one that came back is kept; a
	// left self is kept too.
	ft.observe("c", StatusAlive)
	in = &autopilot.FailedServers{FailedNonVoters: []*autopilot.Server{failedSrv("a", autopilot.NodeLeft), failedSrv("f", autopilot.NodeLeft), failedSrv("c", autopilot.NodeFailed)}}
	out = p.FilterFailedServerRemovals(nil, s, in)
	if len(out.FailedNonVoters) != 1 || out.FailedNonVoters[0].ID != "f" {
		t.Fatalf("non-voter removals = %+v, want only the left server f", out.FailedNonVoters)
	}
}

// Stale voters (in raft, unknown to Serf) are removed several at a time,
// but never more than (voters-1)/2 in one round, whatever their number;
// stale non-voters do not count against that budget, and the node itself
// is never stale-removed.
func TestPromoterBoundsStaleVoterRemovals(t *testing.T) {
	now := time.Now()
	ft := newFailureTracker()
	clock := now
	ft.now = func() time.Time { return clock }
	p := &promoter{maxVoters: 5, cleanupAfter: 30 * time.Second, self: "a", failures: ft, logger: hclog.NewNullLogger()}
	s := stateWith(now, map[raft.ServerID]autopilot.RaftState{
		"a": autopilot.RaftLeader, "b": autopilot.RaftVoter, "c": autopilot.RaftVoter, "d": autopilot.RaftVoter, "e": autopilot.RaftVoter,
	}, nil)
	in := &autopilot.FailedServers{
		StaleVoters:    []raft.ServerID{"a", "c", "d", "e"},
		StaleNonVoters: []raft.ServerID{"a", "n1", "n2", "n3"},
	}
	if out := p.FilterFailedServerRemovals(nil, s, in); len(out.StaleVoters)+len(out.StaleNonVoters) != 0 {
		t.Fatalf("stale servers removed on first sight, before cleanup time: %+v", out)
	}
	clock = now.Add(31 * time.Second)
	out := p.FilterFailedServerRemovals(nil, s, in)
	if want := []raft.ServerID{"c", "d"}; !reflect.DeepEqual(out.StaleVoters, want) {
		t.Fatalf("stale voter removals of 5 voters = %v, want at most (5-1)/2 = 2, never self: %v", out.StaleVoters, want)
	}
	if want := []raft.ServerID{"n1", "n2", "n3"}; !reflect.DeepEqual(out.StaleNonVoters, want) {
		t.Fatalf("stale non-voter removals = %v, want %v", out.StaleNonVoters, want)
	}
	// Stale voters and failed voters share one budget.
	ft.observe("b", StatusFailed)
	clock = clock.Add(31 * time.Second)
	in.FailedVoters = []*autopilot.Server{{ID: "b", NodeStatus: autopilot.NodeFailed}}
	out = p.FilterFailedServerRemovals(nil, s, in)
	if len(out.StaleVoters)+len(out.FailedVoters) != 2 {
		t.Fatalf("stale %v and failed %v voter removals, want 2 in all", out.StaleVoters, out.FailedVoters)
	}
}

// The leader never hands its own removal to the leader loop, whatever
// autopilot asks.
func TestRemoveFailedServerNeverSelf(t *testing.T) {
	m := &Manager{self: "a", logger: hclog.NewNullLogger(), removeCh: make(chan raft.ServerID, 2)}
	d := &delegate{m: m}
	d.RemoveFailedServer(&autopilot.Server{ID: "a", NodeStatus: autopilot.NodeFailed})
	d.RemoveFailedServer(&autopilot.Server{ID: "b", NodeStatus: autopilot.NodeFailed})
	if got := <-m.removeCh; got != "b" {
		t.Fatalf("first removal handed over is %s, want b (never self)", got)
	}
	if n := len(m.removeCh); n != 0 {
		t.Fatalf("%d more removals handed over, want none", n)
	}
}

// TestAutopilotIntervalsFollowTimings checks that short stabilization and
// cleanup timings make autopilot act promptly, and that the defaults keep
// autopilot's own intervals.
func TestAutopilotIntervalsFollowTimings(t *testing.T) {
	cases := []struct {
		stabilization, cleanup, reconcile, update time.Duration
	}{
		{0, 0, DefaultServerStabilizationTime / 2, DefaultAutopilotUpdateInterval},
		{time.Second, 4 * time.Second, 500 * time.Millisecond, 250 * time.Millisecond},
		{10 * time.Second, 3 * time.Second, 1500 * time.Millisecond, 750 * time.Millisecond},
		{100 * time.Millisecond, time.Minute, minAutopilotInterval, minAutopilotInterval / 2},
		{time.Hour, time.Hour, DefaultAutopilotReconcileInterval, DefaultAutopilotUpdateInterval},
	}
	for _, tc := range cases {
		c := ManagerConfig{ServerStabilizationTime: tc.stabilization, DeadServerCleanupAfter: tc.cleanup}
		c.setDefaults()
		if c.AutopilotReconcileInterval != tc.reconcile || c.AutopilotUpdateInterval != tc.update {
			t.Errorf("stabilization %s, cleanup %s: reconcile %s, update %s; want %s, %s", tc.stabilization, tc.cleanup,
				c.AutopilotReconcileInterval, c.AutopilotUpdateInterval, tc.reconcile, tc.update)
		}
	}
	c := ManagerConfig{AutopilotReconcileInterval: 3 * time.Second, AutopilotUpdateInterval: time.Second}
	c.setDefaults()
	if c.AutopilotReconcileInterval != 3*time.Second || c.AutopilotUpdateInterval != time.Second {
		t.Errorf("explicit intervals overridden: %s, %s", c.AutopilotReconcileInterval, c.AutopilotUpdateInterval)
	}
}
