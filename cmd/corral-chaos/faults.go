package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Fault kinds.
const (
	faultKill          = "kill"           // kill -9 of a node's process group, restart on the same data dir
	faultPause         = "pause"          // SIGSTOP, then SIGCONT
	faultIsolate       = "isolate"        // one node cut off from the other nodes
	faultIsolateLeader = "isolate-leader" // the leader cut off (clients still reach it)
	faultSplit         = "split"          // a minority cut off from a majority (5+ nodes)
	faultOneWay        = "oneway"         // A→B dropped, B→A delivered
	faultBridge        = "bridge"         // A and B cannot see each other, both see C
)

// faultKinds lists the kinds a run can use with n nodes on net.
func faultKinds(n int, net network) []string {
	kinds := []string{faultKill, faultPause}
	if net.partitions() {
		kinds = append(kinds, faultIsolate, faultIsolateLeader, faultOneWay, faultBridge)
		if n >= 5 {
			kinds = append(kinds, faultSplit)
		}
	}
	return kinds
}

// faultRecord is one injected fault, with times in ns since the start of
// the run: Applied is when it took hold, HealStart when healing began.
// Minority names the nodes cut off from a quorum while it held: none of
// them may acknowledge a write in that window.
type faultRecord struct {
	Kind      string   `json:"kind"`
	Nodes     []string `json:"nodes"`
	Minority  []string `json:"minority,omitempty"`
	Detail    string   `json:"detail"`
	Applied   int64    `json:"applied"`
	HealStart int64    `json:"heal_start"`
	Healed    int64    `json:"healed"`
	Err       string   `json:"err,omitempty"`
}

// nemesis injects faults one at a time, each healed after a few seconds.
type nemesis struct {
	agents []*agent
	net    network
	cl     *client
	rng    *rand.Rand
	kinds  []string
	start  time.Time
	logf   func(string, ...any)
	log    *os.File

	mu     sync.Mutex
	faults []faultRecord
}

func (n *nemesis) since() int64 { return int64(time.Since(n.start)) }

// run injects faults until ctx ends: first every kind once in a seeded
// order, then kinds at random. A fault in progress is healed before run
// returns.
func (n *nemesis) run(ctx context.Context) {
	order := slices.Clone(n.kinds)
	n.rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	for i := 0; ; i++ {
		if !sleepCtx(ctx, time.Duration(1500+n.rng.IntN(1500))*time.Millisecond) {
			return
		}
		kind := n.kinds[n.rng.IntN(len(n.kinds))]
		if i < len(order) {
			kind = order[i]
		}
		n.inject(ctx, kind, time.Duration(3000+n.rng.IntN(3000))*time.Millisecond)
	}
}

// inject applies one fault, holds it for hold (or until ctx ends), heals.
func (n *nemesis) inject(ctx context.Context, kind string, hold time.Duration) {
	rec := faultRecord{Kind: kind}
	heal, err := n.apply(ctx, kind, &rec)
	rec.Applied = n.since()
	if err != nil {
		rec.Err = err.Error()
	}
	n.logf("fault %s %s %s (hold %s)%s", kind, strings.Join(rec.Nodes, ","), rec.Detail, hold.Round(time.Millisecond), errSuffix(err))
	sleepCtx(ctx, hold)
	rec.HealStart = n.since()
	if heal != nil {
		if err := heal(); err != nil {
			rec.Err = strings.TrimPrefix(rec.Err+"; heal: "+err.Error(), "; ")
		}
	}
	rec.Healed = n.since()
	n.logf("heal  %s %s%s", kind, strings.Join(rec.Nodes, ","), errSuffix(err))
	n.mu.Lock()
	n.faults = append(n.faults, rec)
	n.mu.Unlock()
	if n.log != nil {
		b, _ := json.Marshal(rec)
		_, _ = n.log.Write(append(b, '\n'))
	}
}

// apply injects kind and returns how to heal it.
func (n *nemesis) apply(ctx context.Context, kind string, rec *faultRecord) (func() error, error) {
	perm := n.rng.Perm(len(n.agents))
	names := func(idx ...int) []string {
		var out []string
		for _, i := range idx {
			out = append(out, n.agents[i].name)
		}
		return out
	}
	switch kind {
	case faultKill:
		a := n.agents[perm[0]]
		rec.Nodes = names(perm[0])
		if err := a.kill(); err != nil {
			return nil, err
		}
		return a.start, nil
	case faultPause:
		a := n.agents[perm[0]]
		rec.Nodes = names(perm[0])
		if err := a.signal(syscall.SIGSTOP); err != nil {
			return nil, err
		}
		return func() error { return a.signal(syscall.SIGCONT) }, nil
	case faultIsolate, faultIsolateLeader:
		x := perm[0]
		if kind == faultIsolateLeader {
			if x = n.cl.leader(ctx, n.agents); x < 0 {
				rec.Detail = "no leader known: isolating a random node"
				x = perm[0]
			}
		}
		rec.Nodes, rec.Minority = names(x), names(x)
		return n.net.heal, n.cut([]int{x}, others(len(n.agents), x))
	case faultSplit:
		k := (len(n.agents) - 1) / 2
		minority := perm[:k]
		rec.Nodes, rec.Minority = names(minority...), names(minority...)
		rec.Detail = "minority " + strings.Join(names(minority...), ",") + " | majority " + strings.Join(names(perm[k:]...), ",")
		return n.net.heal, n.cut(minority, perm[k:])
	case faultOneWay:
		rec.Nodes = names(perm[0], perm[1])
		rec.Detail = fmt.Sprintf("%s→%s dropped", n.agents[perm[0]].name, n.agents[perm[1]].name)
		return n.net.heal, n.net.drop(perm[0], perm[1])
	case faultBridge:
		rec.Nodes = names(perm[0], perm[1], perm[2])
		rec.Detail = fmt.Sprintf("%s and %s apart, both see %s", n.agents[perm[0]].name, n.agents[perm[1]].name, n.agents[perm[2]].name)
		return n.net.heal, n.cut([]int{perm[0]}, []int{perm[1]})
	}
	return nil, fmt.Errorf("unknown fault kind %q", kind)
}

// cut drops every packet between the two groups, both ways.
func (n *nemesis) cut(a, b []int) error {
	for _, x := range a {
		for _, y := range b {
			if err := n.net.drop(x, y); err != nil {
				return err
			}
			if err := n.net.drop(y, x); err != nil {
				return err
			}
		}
	}
	return nil
}

// records returns the faults injected so far.
func (n *nemesis) records() []faultRecord {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.faults)
}

// healAll undoes whatever may still hold: drops, pauses, dead agents.
func healAll(net network, agents []*agent) error {
	err := net.heal()
	for _, a := range agents {
		if a.running() {
			_ = a.signal(syscall.SIGCONT)
		} else if e := a.start(); e != nil && err == nil {
			err = e
		}
	}
	return err
}

func others(n, x int) []int {
	var out []int
	for i := range n {
		if i != x {
			out = append(out, i)
		}
	}
	return out
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	select {
	case <-time.After(d):
		return true
	case <-ctx.Done():
		return false
	}
}

func errSuffix(err error) string {
	if err != nil {
		return ": " + err.Error()
	}
	return ""
}
