package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/corral-dev/corral/daemon/api"
)

// synthetic builds a passing history: two acknowledged submits (one of
// them retried after an indeterminate answer), a cancel, consistent reads,
// the side effects and three identical nodes with one leader.
func synthetic() checkInput {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ops := []Op{
		{ID: 1, Type: opInvoke, F: "submit", T: 10, Node: "n1", Key: "k1"},
		{ID: 1, Type: opIndeterminate, F: "submit", T: 20, Node: "n1", Key: "k1", Err: "timeout"},
		{ID: 2, Type: opInvoke, F: "submit", T: 30, Node: "n2", Key: "k1"},
		{ID: 2, Type: opOK, F: "submit", T: 40, Node: "n2", Key: "k1", Job: "J1"},
		{ID: 3, Type: opInvoke, F: "submit", T: 50, Node: "n3", Key: "k2"},
		{ID: 3, Type: opOK, F: "submit", T: 60, Node: "n3", Key: "k2", Job: "J2"},
		{ID: 4, Type: opInvoke, F: "cancel", T: 70, Node: "n1", Job: "J2"},
		{ID: 4, Type: opOK, F: "cancel", T: 80, Node: "n1", Job: "J2", State: "cancelled"},
		{ID: 5, Type: opInvoke, F: "read", T: 90, Node: "n2", Job: "J1", Mode: "consistent"},
		{ID: 5, Type: opOK, F: "read", T: 100, Node: "n2", Job: "J1", Mode: "consistent", Index: 7, State: "running"},
		{ID: 6, Type: opInvoke, F: "read", T: 110, Node: "n3", Job: "J1", Mode: "consistent"},
		{ID: 6, Type: opOK, F: "read", T: 120, Node: "n3", Job: "J1", Mode: "consistent", Index: 9, State: "succeeded"},
		// A stale read may go back in time.
		{ID: 7, Type: opInvoke, F: "read", T: 130, Node: "n3", Job: "J1", Mode: "stale"},
		{ID: 7, Type: opOK, F: "read", T: 140, Node: "n3", Job: "J1", Mode: "stale", Index: 5, State: "queued"},
	}
	faults := []faultRecord{{Kind: faultIsolate, Nodes: []string{"n1"}, Minority: []string{"n1"}, Applied: 200, HealStart: 300, Healed: 310}}
	effects := []effect{
		// A stale execution of attempt 1 on n3 (its lease expired) whose
		// report was rejected, then the valid attempt 2 on n1.
		{Job: "J1", Attempt: 1, Node: "n3", Nonce: "aaa", Start: t0, End: t0.Add(time.Second), Outcome: "succeeded"},
		{Job: "J1", Attempt: 2, Node: "n1", Nonce: "bbb", Start: t0, End: t0.Add(time.Second), Outcome: "succeeded"},
	}
	j1 := api.Job{ID: "J1", UniqueKey: "k1", State: "succeeded", Attempt: 2, Node: "n1", Result: json.RawMessage(`{"nonce":"bbb"}`),
		Attempts: []api.Attempt{
			{Attempt: 1, Node: "n3", Token: 100, Outcome: "lost"},
			{Attempt: 2, Node: "n1", Token: 200, Outcome: "succeeded"},
		}}
	j2 := api.Job{ID: "J2", UniqueKey: "k2", State: "cancelled", Attempt: 0}
	var nodes []nodeFinal
	for i, name := range []string{"n1", "n2", "n3"} {
		n := nodeFinal{Name: name, Reachable: true, Index: 9, Jobs: []api.Job{j1, j2},
			Self: api.Self{Node: name, ID: "id-" + name, State: "follower", Leader: "id-n2"}}
		if i == 1 {
			n.Self.State = "leader"
		}
		for _, s := range []string{"n1", "n2", "n3"} {
			n.Config.Servers = append(n.Config.Servers, api.RaftServer{ID: "id-" + s, Node: s, Voter: true})
		}
		nodes = append(nodes, n)
	}
	return checkInput{Ops: ops, Faults: faults, Effects: effects, Nodes: nodes}
}

func TestCheckerPassesAGoodHistory(t *testing.T) {
	r := check(synthetic())
	if !r.ok() || r.Acked != 2 {
		t.Fatalf("a correct history failed: %+v", r)
	}
}

// TestCheckerCatchesViolations: each synthetic history breaks one promise;
// the checker must fail every one of them, on the right count.
func TestCheckerCatchesViolations(t *testing.T) {
	cases := []violation{
		{"lost acknowledged job", func(in *checkInput) {
			for i := range in.Nodes {
				in.Nodes[i].Jobs = in.Nodes[i].Jobs[1:] // J1 gone everywhere
			}
		}, func(r report) int { return r.Lost }, "lost: job J1"},
		{"two jobs for one key", func(in *checkInput) {
			extra := api.Job{ID: "J3", UniqueKey: "k1", State: "succeeded", Attempt: 1, Node: "n2",
				Result:   json.RawMessage(`{"nonce":"ccc"}`),
				Attempts: []api.Attempt{{Attempt: 1, Node: "n2", Token: 300, Outcome: "succeeded"}}}
			for i := range in.Nodes {
				in.Nodes[i].Jobs = append(in.Nodes[i].Jobs, extra)
			}
			in.Effects = append(in.Effects, effect{Job: "J3", Attempt: 1, Node: "n2", Nonce: "ccc", Outcome: "succeeded"})
		}, func(r report) int { return r.DupKeys }, "dup_keys: key k1"},
		{"two acknowledged IDs for one key", func(in *checkInput) {
			in.Ops = append(in.Ops,
				Op{ID: 9, Type: opInvoke, F: "submit", T: 150, Node: "n1", Key: "k1"},
				Op{ID: 9, Type: opOK, F: "submit", T: 160, Node: "n1", Key: "k1", Job: "J9"})
		}, func(r report) int { return r.DupKeys }, "dup_keys: key k1 acknowledged as 2 jobs"},
		{"result from a stale attempt", func(in *checkInput) {
			for i := range in.Nodes {
				in.Nodes[i].Jobs[0].Result = json.RawMessage(`{"nonce":"aaa"}`) // attempt 1's execution
			}
		}, func(r report) int { return r.StaleResults }, "stale result: job J1"},
		{"result no execution produced", func(in *checkInput) {
			in.Effects = in.Effects[:1]
		}, func(r report) int { return r.StaleResults }, "matches no execution"},
		{"job diverges on one node", func(in *checkInput) {
			in.Nodes[2].Jobs = []api.Job{in.Nodes[2].Jobs[0], in.Nodes[2].Jobs[1]}
			in.Nodes[2].Jobs[1].State = "queued"
		}, func(r report) int { return r.Diverged }, "diverged: job J2 on n3"},
		{"node behind the others", func(in *checkInput) {
			in.Nodes[0].Index = 8
		}, func(r report) int { return r.Diverged }, "diverged: n1 is at index 8"},
		{"acknowledgement from a minority leader", func(in *checkInput) {
			in.Ops = append(in.Ops,
				Op{ID: 10, Type: opInvoke, F: "submit", T: 220, Node: "n1", Key: "k3"},
				Op{ID: 10, Type: opOK, F: "submit", T: 230, Node: "n1", Key: "k3", Job: "J2"})
		}, func(r report) int { return r.MinorityAcks }, "minority ack: submit"},
		{"consistent read goes back in time", func(in *checkInput) {
			in.Ops = append(in.Ops,
				Op{ID: 11, Type: opInvoke, F: "read", T: 150, Node: "n1", Job: "J1", Mode: "consistent"},
				Op{ID: 11, Type: opOK, F: "read", T: 160, Node: "n1", Job: "J1", Mode: "consistent", Index: 7})
		}, func(r report) int { return r.StaleReads }, "stale read: job J1"},
		{"acknowledged cancel undone", func(in *checkInput) {
			for i := range in.Nodes {
				in.Nodes[i].Jobs[1].State = "succeeded"
				in.Nodes[i].Jobs[1].Result = nil
			}
		}, func(r report) int { return r.WrongState }, "wrong_state: job J2"},
		{"running job asked to cancel ran again", func(in *checkInput) {
			in.Ops = append(in.Ops,
				Op{ID: 12, Type: opInvoke, F: "cancel", T: 150, Node: "n2", Job: "J3"},
				Op{ID: 12, Type: opOK, F: "cancel", T: 160, Node: "n2", Job: "J3", State: "running"})
			j3 := api.Job{ID: "J3", UniqueKey: "k9", State: "failed", Attempt: 3}
			for i := range in.Nodes {
				in.Nodes[i].Jobs = append(in.Nodes[i].Jobs, j3)
			}
		}, func(r report) int { return r.WrongState }, "wrong_state: job J3 was running"},
		{"job never finishes", func(in *checkInput) {
			for i := range in.Nodes {
				in.Nodes[i].Jobs[1].State = "queued"
			}
		}, func(r report) int { return r.Stuck }, "stuck: job J2"},
		{"two leaders", func(in *checkInput) {
			in.Nodes[0].Self.State, in.Nodes[0].Self.Leader = "leader", "id-n1"
		}, func(r report) int { return r.Leaders - 1 }, "leaders: 2"},
		{"voter missing", func(in *checkInput) {
			in.Nodes[1].Config.Servers[2].Voter = false
		}, func(r report) int { return r.VotersMismatch }, "voters: n2"},
	}
	runViolations(t, synthetic, cases)
}

// violation is a history that breaks one promise: mutate breaks it,
// counter is the report count it must raise, want a phrase of the problem.
type violation struct {
	name    string
	mutate  func(in *checkInput)
	counter func(r report) int
	want    string
}

// runViolations checks that the checker fails each case's history, on the
// right count, and explains it.
func runViolations(t *testing.T, base func() checkInput, cases []violation) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := base()
			tc.mutate(&in)
			r := check(in)
			if r.ok() {
				t.Fatalf("checker passed a history with %s: %+v", tc.name, r)
			}
			if tc.counter(r) < 1 {
				t.Errorf("the violation was counted elsewhere: %+v", r)
			}
			if !strings.Contains(strings.Join(r.Problems, "\n"), tc.want) {
				t.Errorf("problems do not mention %q:\n%s", tc.want, strings.Join(r.Problems, "\n"))
			}
		})
	}
}

func TestResultLine(t *testing.T) {
	in := synthetic()
	r := check(in)
	line := resultLine(r, in.Faults, []string{faultKill, faultIsolate}, 42, "netns")
	for _, want := range []string{"RESULT ok=true ", " acked=2 ", " faults=1 ", " kinds=isolate ", " seed=42 ", " net=netns", " leaders=1 "} {
		if !strings.Contains(line, want) {
			t.Errorf("%q lacks %q", line, want)
		}
	}
}
