package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/corral-dev/corral/daemon/api"
)

// The periodic part of the workload: periodic jobs applied through the API
// at the start, firing every second through the faults, their jobs run on
// the chaos plugin; an observer samples who leads and which job each node
// last saw fired for which tick; at the end the schedules are parked (the
// definitions stay, so their last tick and counters can be read with the
// final state) and the checker matches every fired job to its tick.

// periodicDef is one periodic job of the workload. Its jobs go to a queue
// of its own name: that is how the checker tells them apart (a fired job
// does not record its tick; see checkPeriodic).
type periodicDef struct {
	Name    string `json:"name"`
	Cron    string `json:"cron"`
	CatchUp bool   `json:"catch_up"`
}

// periodicDefs: one every-second schedule of each catch-up mode, both with
// overlap allow so that every fired tick makes exactly one job.
var periodicDefs = []periodicDef{
	{Name: "tick-catchup", Cron: "* * * * * *", CatchUp: true},
	{Name: "tick-latest", Cron: "* * * * * *", CatchUp: false},
}

// parkCron is the schedule the periodic jobs are re-applied with at the
// end: a replaced definition keeps its last tick and counters, and this one
// has no tick for years, so the final state holds still while it is read.
const parkCron = "0 0 0 29 2 *"

const (
	// periodicApplyWait bounds the tries of applying (or parking) the
	// periodic jobs.
	periodicApplyWait = 60 * time.Second
	// observeEvery is the observer's sampling period.
	observeEvery = 300 * time.Millisecond
	// observeTimeout bounds one observer request (a paused node answers
	// nothing).
	observeTimeout = 500 * time.Millisecond
)

// periodicObs is one observation of a periodic job on one node: its last
// fired tick and the job that firing made, a fact of some committed state.
type periodicObs struct {
	At       time.Time `json:"at"`
	Node     string    `json:"node"`
	Name     string    `json:"name"`
	LastTick time.Time `json:"last_tick"`
	LastJob  string    `json:"last_job"`
}

// leaderSample is the observer's view of leadership at At: Leader is the
// node that says it leads and that a majority of the nodes follow, "" when
// there is none.
type leaderSample struct {
	At     time.Time `json:"at"`
	Leader string    `json:"leader"`
}

// periodicInput is what the periodic checks look at, besides the final
// state.
type periodicInput struct {
	Defs []periodicDef `json:"defs"`
	// ParkedAt is when parking began: ticks after it need not fire.
	ParkedAt time.Time      `json:"parked_at"`
	Obs      []periodicObs  `json:"observations"`
	Leaders  []leaderSample `json:"leaders"`
}

// periodicWorkload applies, observes and parks the periodic jobs.
type periodicWorkload struct {
	cl     *client
	agents []*agent
	logf   func(string, ...any)

	mu       sync.Mutex
	parkedAt time.Time
	obs      []periodicObs
	leaders  []leaderSample
}

// periodicRequest is the definition of d, with schedule cron.
func periodicRequest(d periodicDef, cron string) api.PeriodicRequest {
	return api.PeriodicRequest{
		Cron:    cron,
		Overlap: "allow",
		CatchUp: d.CatchUp,
		Job: api.JobRequest{Queue: d.Name, Plugin: "chaos", Payload: json.RawMessage(`{"sleep_ms":20}`),
			MaxAttempts: 25, Timeout: api.Duration(30 * time.Second)},
	}
}

// apply applies every periodic job with its schedule.
func (p *periodicWorkload) apply(ctx context.Context) error {
	for _, d := range periodicDefs {
		if _, err := p.put(ctx, d, d.Cron); err != nil {
			return err
		}
		p.logf("periodic %s applied: %q, catch_up=%t, overlap allow", d.Name, d.Cron, d.CatchUp)
	}
	return nil
}

// park re-applies every periodic job with parkCron; it records when it
// began.
func (p *periodicWorkload) park(ctx context.Context) error {
	for i, d := range periodicDefs {
		first, err := p.put(ctx, d, parkCron)
		if i == 0 {
			p.mu.Lock()
			p.parkedAt = first
			p.mu.Unlock()
		}
		if err != nil {
			return fmt.Errorf("park: %w", err)
		}
	}
	p.logf("periodic jobs parked")
	return nil
}

// put applies d with schedule cron through any node until one answers
// 2xx (the PUT is idempotent); first is when the first try began.
func (p *periodicWorkload) put(ctx context.Context, d periodicDef, cron string) (first time.Time, err error) {
	first = time.Now()
	req := periodicRequest(d, cron)
	var last answer
	ok := poll(ctx, periodicApplyWait, func() bool {
		for _, a := range p.agents {
			last = p.cl.do(ctx, writeTimeout, http.MethodPut, a.httpURL+"/v1/periodic/"+d.Name, req)
			if last.err == nil && last.status == http.StatusOK {
				return true
			}
		}
		return false
	})
	if !ok {
		return first, fmt.Errorf("periodic %s (%q) not applied within %s: %d %s", d.Name, cron, periodicApplyWait, last.status, last.errText())
	}
	return first, nil
}

// observe samples leadership and the periodic jobs' last firings on every
// node until ctx ends.
func (p *periodicWorkload) observe(ctx context.Context) {
	last := map[string]periodicObs{} // node/name -> last recorded
	for ctx.Err() == nil {
		at := time.Now()
		selves := make([]api.Self, len(p.agents))
		answered := make([]bool, len(p.agents))
		lists := make([]api.PeriodicList, len(p.agents))
		listed := make([]bool, len(p.agents))
		var wg sync.WaitGroup
		for i, a := range p.agents {
			wg.Go(func() { _, answered[i] = p.cl.getJSON(ctx, observeTimeout, a.httpURL+"/v1/agent/self", &selves[i]) })
			wg.Go(func() { _, listed[i] = p.cl.getJSON(ctx, observeTimeout, a.httpURL+"/v1/periodic", &lists[i]) })
		}
		wg.Wait()
		if ctx.Err() != nil {
			return
		}
		p.mu.Lock()
		p.leaders = append(p.leaders, leaderSample{At: at, Leader: agreedLeader(p.agents, selves, answered)})
		for i, a := range p.agents {
			if !listed[i] {
				continue
			}
			for _, pd := range lists[i].Periodics {
				o := periodicObs{At: at, Node: a.name, Name: pd.Name, LastTick: pd.LastTick, LastJob: pd.LastJob}
				k := a.name + "/" + pd.Name
				if o.LastJob == "" || (last[k].LastJob == o.LastJob && last[k].LastTick.Equal(o.LastTick)) {
					continue
				}
				last[k] = o
				p.obs = append(p.obs, o)
			}
		}
		p.mu.Unlock()
		sleepCtx(ctx, time.Until(at.Add(observeEvery)))
	}
}

// agreedLeader is the name of the node that says it leads and that a
// majority of all the nodes (itself included) name as their leader.
func agreedLeader(agents []*agent, selves []api.Self, answered []bool) string {
	for i, s := range selves {
		if !answered[i] || s.State != "leader" {
			continue
		}
		n := 0
		for j, o := range selves {
			if answered[j] && o.Leader == s.ID {
				n++
			}
		}
		if n > len(agents)/2 {
			return agents[i].name
		}
	}
	return ""
}

// input returns what the checker needs.
func (p *periodicWorkload) input() periodicInput {
	p.mu.Lock()
	defer p.mu.Unlock()
	return periodicInput{Defs: periodicDefs, ParkedAt: p.parkedAt,
		Obs: append([]periodicObs(nil), p.obs...), Leaders: append([]leaderSample(nil), p.leaders...)}
}
