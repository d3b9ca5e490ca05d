package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/corral-dev/corral/daemon/api"
)

// Convergence bounds. A backlog that keeps draining is not stuck: the
// drain wait ends only after stallLimit without progress, and not before
// stallLimit after the last retry backoff is due (or at maxDrain).
const (
	clusterWait = 90 * time.Second
	stallLimit  = 60 * time.Second
	maxDrain    = 4 * time.Minute
	indexWait   = 30 * time.Second
)

// nodeFinal is one node's state after healing.
type nodeFinal struct {
	Name      string                `json:"name"`
	Reachable bool                  `json:"reachable"`
	Self      api.Self              `json:"self"`
	Config    api.RaftConfiguration `json:"config"`
	Index     uint64                `json:"index"`
	Jobs      []api.Job             `json:"jobs"`
	Periodics []api.Periodic        `json:"periodics"`
}

// settle waits, after every fault is healed, for one leader and the full
// voter set, then for the backlog to drain, then for every node to reach
// the same index. Each wait is bounded; it logs what it waited for.
func settle(ctx context.Context, cl *client, agents []*agent, logf func(string, ...any)) {
	start := time.Now()
	ok := poll(ctx, clusterWait, func() bool {
		ld := cl.leader(ctx, agents)
		if ld < 0 {
			return false
		}
		for _, a := range agents {
			s, ok := cl.self(ctx, a)
			rc, ok2 := cl.raftConfig(ctx, a)
			if !ok || !ok2 || s.Leader != agentID(cl, ctx, agents[ld]) || voters(rc) != len(agents) {
				return false
			}
		}
		return true
	})
	logf("settle: cluster %s after %s", okWord(ok), time.Since(start).Round(time.Millisecond))

	start = time.Now()
	last, lastChange := -1, time.Now()
	ok = poll(ctx, maxDrain, func() bool {
		ld := cl.leader(ctx, agents)
		if ld < 0 {
			return time.Since(lastChange) > stallLimit
		}
		var list api.JobList
		if _, ok := cl.getJSON(ctx, 10*time.Second, agents[ld].httpURL+"/v1/jobs", &list); !ok {
			return time.Since(lastChange) > stallLimit
		}
		open, waitUntil := 0, time.Time{}
		for _, j := range list.Jobs {
			if !terminal(j.State) {
				open++
			}
			if j.State == "scheduled" && j.RunAt.After(waitUntil) {
				waitUntil = j.RunAt // a retry backoff: not stuck before it is due
			}
		}
		if open != last {
			last, lastChange = open, time.Now()
			logf("settle: %d jobs not finished yet", open)
		}
		return open == 0 || (time.Since(lastChange) > stallLimit && time.Since(waitUntil) > stallLimit)
	})
	logf("settle: backlog %s (%d open) after %s", okWord(ok && last == 0), last, time.Since(start).Round(time.Millisecond))

	start = time.Now()
	ok = poll(ctx, indexWait, func() bool {
		var idx uint64
		for i, a := range agents {
			var list api.JobList
			if _, ok := cl.getJSON(ctx, 10*time.Second, a.httpURL+"/v1/jobs?stale=true", &list); !ok {
				return false
			}
			if i > 0 && list.Index != idx {
				return false
			}
			idx = list.Index
		}
		return true
	})
	logf("settle: same index on every node: %s after %s", okWord(ok), time.Since(start).Round(time.Millisecond))
}

// collect reads every node's final state. The nodes are read one after
// the other, so a straggling raft entry can land between two reads: it
// reads again until every node answers at the same index (up to
// indexWait), and returns the last reading either way.
func collect(ctx context.Context, cl *client, agents []*agent, logf func(string, ...any)) []nodeFinal {
	var out []nodeFinal
	start := time.Now()
	ok := poll(ctx, indexWait, func() bool {
		out = collectOnce(ctx, cl, agents)
		for _, n := range out {
			if !n.Reachable || n.Index != out[0].Index {
				return false
			}
		}
		return true
	})
	if !ok || time.Since(start) > time.Second {
		logf("collect: every node at one index: %s after %s", okWord(ok), time.Since(start).Round(time.Millisecond))
	}
	return out
}

func collectOnce(ctx context.Context, cl *client, agents []*agent) []nodeFinal {
	out := make([]nodeFinal, len(agents))
	for i, a := range agents {
		nf := nodeFinal{Name: a.name}
		s, ok1 := cl.self(ctx, a)
		rc, ok2 := cl.raftConfig(ctx, a)
		var list api.JobList
		_, ok3 := cl.getJSON(ctx, 20*time.Second, a.httpURL+"/v1/jobs", &list)
		var pl api.PeriodicList
		_, ok4 := cl.getJSON(ctx, 5*time.Second, a.httpURL+"/v1/periodic", &pl)
		nf.Reachable = ok1 && ok2 && ok3 && ok4
		nf.Self, nf.Config, nf.Index, nf.Jobs, nf.Periodics = s, rc, list.Index, list.Jobs, pl.Periodics
		out[i] = nf
	}
	return out
}

func agentID(cl *client, ctx context.Context, a *agent) string {
	s, _ := cl.self(ctx, a)
	return s.ID
}

func voters(rc api.RaftConfiguration) int {
	n := 0
	for _, s := range rc.Servers {
		if s.Voter {
			n++
		}
	}
	return n
}

func terminal(state string) bool {
	return state == "succeeded" || state == "failed" || state == "cancelled"
}

// poll checks cond every 250 ms until it holds or timeout passes.
func poll(ctx context.Context, timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) || !sleepCtx(ctx, 250*time.Millisecond) {
			return false
		}
	}
}

func okWord(ok bool) string {
	if ok {
		return "ok"
	}
	return "NOT settled"
}

// effect is one line of a side-effect log (the chaosplugin's Effect).
type effect struct {
	Job     string    `json:"job"`
	Attempt int       `json:"attempt"`
	Node    string    `json:"node"`
	Nonce   string    `json:"nonce"`
	Start   time.Time `json:"start"`
	End     time.Time `json:"end"`
	Outcome string    `json:"outcome"`
}

// readEffects reads every node's side-effect log.
func readEffects(agents []*agent) ([]effect, error) {
	var out []effect
	for _, a := range agents {
		f, err := os.Open(a.effectsPath())
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var e effect
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				f.Close()
				return nil, fmt.Errorf("%s: bad side-effect line %q: %w", a.effectsPath(), sc.Text(), err)
			}
			out = append(out, e)
		}
		f.Close()
		if err := sc.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}
