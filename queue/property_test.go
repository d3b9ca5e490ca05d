package queue

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

// gen produces random but plausible command sequences: it remembers the
// jobs and leases it has seen so reports, heartbeats and cancels usually hit
// real jobs (and sometimes stale or unknown ones).
type gen struct {
	r      *rand.Rand
	now    time.Time
	nextID int
	ids    []string
	leases []Report // ID, Token, Node of granted leases
}

var (
	genNodes   = []string{"n1", "n2", "n3"}
	genPlugins = []string{"p1", "p2", "p3"}
	genQueues  = []string{"", "default", "a", "b"}
	genKeys    = []string{"", "", "", "k1", "k2", "k3"}
)

func (g *gen) pick(xs []string) string { return xs[g.r.IntN(len(xs))] }

func (g *gen) knownID() string {
	if len(g.ids) == 0 || g.r.IntN(20) == 0 {
		return "unknown"
	}
	return g.ids[g.r.IntN(len(g.ids))]
}

func (g *gen) entry() Entry {
	switch g.r.IntN(40) {
	case 0:
		g.now = g.now.Add(time.Duration(g.r.IntN(48)) * time.Hour)
	default:
		g.now = g.now.Add(time.Duration(g.r.IntN(90_000)) * time.Millisecond)
	}
	n := 1 + g.r.IntN(4)
	cmds := make([]Command, n)
	for i := range cmds {
		cmds[i] = g.command()
	}
	return Entry{Now: g.now, Cmds: cmds}
}

func (g *gen) command() Command {
	switch k := g.r.IntN(20); {
	case k < 6:
		n := 1 + g.r.IntN(3)
		c := &Submit{}
		for i := 0; i < n; i++ {
			g.nextID++
			id := fmt.Sprintf("j%05d", g.nextID)
			if g.r.IntN(30) == 0 && len(g.ids) > 0 {
				id = g.ids[0] // duplicate id
			}
			sp := Spec{
				Queue:       g.pick(genQueues),
				Plugin:      g.pick(genPlugins),
				Priority:    g.r.IntN(5) - 2,
				MaxAttempts: g.r.IntN(4),
				UniqueKey:   g.pick(genKeys),
			}
			if g.r.IntN(25) == 0 {
				sp.Plugin = "" // invalid
			}
			if g.r.IntN(4) == 0 {
				sp.RunAt = g.now.Add(time.Duration(g.r.IntN(120)) * time.Second)
			}
			if g.r.IntN(4) == 0 {
				sp.UniqueFor = time.Duration(g.r.IntN(600)) * time.Second
			}
			if g.r.IntN(5) == 0 {
				sp.Constraints = map[string]string{"zone": g.pick([]string{"a", "b"})}
			}
			if g.r.IntN(3) == 0 {
				sp.Payload = []byte(id)
			}
			c.IDs = append(c.IDs, id)
			c.Specs = append(c.Specs, sp)
			g.ids = append(g.ids, id)
		}
		if g.r.IntN(2) == 0 {
			return g.dag(c)
		}
		return c
	case k < 10:
		slots := map[string]int{}
		for _, p := range genPlugins {
			if g.r.IntN(2) == 0 {
				slots[p] = g.r.IntN(8)
			}
		}
		return &Claim{Node: g.pick(genNodes), Tags: map[string]string{"zone": g.pick([]string{"a", "b"})},
			Slots: slots, LeaseTTL: time.Duration(g.r.IntN(60)) * time.Second}
	case k < 11:
		c := &Heartbeat{Node: g.pick(genNodes), LeaseTTL: time.Duration(g.r.IntN(60)) * time.Second}
		for i := 0; i < 3 && len(g.leases) > 0; i++ {
			l := g.leases[g.r.IntN(len(g.leases))]
			c.Leases = append(c.Leases, LeaseRef{ID: l.ID, Token: l.Token})
		}
		return c
	case k < 15:
		c := &Complete{}
		for i := 0; i < 1+g.r.IntN(4) && len(g.leases) > 0; i++ {
			j := g.r.IntN(len(g.leases))
			rep := g.leases[j]
			g.leases = append(g.leases[:j], g.leases[j+1:]...)
			rep.Outcome = []Outcome{OutcomeSucceeded, OutcomeFailed, OutcomeFailed, OutcomeCancelled}[g.r.IntN(4)]
			if rep.Outcome == OutcomeSucceeded {
				rep.Result = []byte("ok")
			} else {
				rep.Error = "boom"
			}
			rep.NonRetryable = g.r.IntN(8) == 0
			if g.r.IntN(15) == 0 {
				rep.Token++ // stale
			}
			c.Reports = append(c.Reports, rep)
		}
		return c
	case k < 16:
		if g.r.IntN(5) == 0 {
			return &BulkCancel{Filter: g.bulkFilter()}
		}
		return &Cancel{ID: g.knownID()}
	case k < 17:
		if g.r.IntN(5) == 0 {
			return &BulkRetry{Filter: g.bulkFilter()}
		}
		return &Retry{ID: g.knownID()}
	case k < 18:
		if g.r.IntN(3) == 0 {
			rates := []Rate{{}, {Count: 5, Per: time.Second, Burst: 1}, {Count: 3, Per: time.Second, Burst: 4}, {Count: 100, Per: time.Minute, Burst: 7}}
			return &SetQueueRate{Name: g.pick(genQueues[1:]), Rate: rates[g.r.IntN(len(rates))]}
		}
		if g.r.IntN(6) == 0 {
			return &DeleteQueue{Name: g.pick(genQueues)}
		}
		return &SetQueue{Name: g.pick(genQueues[1:]), Fields: QueueField(g.r.IntN(32)), Config: QueueConfig{
			Paused: g.r.IntN(5) == 0, Concurrency: []int{0, 0, 0, 2, 5}[g.r.IntN(5)], MaxAttempts: g.r.IntN(5),
			Retention: time.Duration(g.r.IntN(3)) * time.Hour, BackoffBase: time.Duration(g.r.IntN(20)) * time.Second,
		}}
	case k < 19:
		if g.r.IntN(4) == 0 {
			return &FailNode{Node: g.pick(genNodes), Reason: "gone"}
		}
		return &ExpireLeases{}
	default:
		return &Purge{Limit: g.r.IntN(20)}
	}
}

// dag turns a submit into a SubmitDAG: each job depends on some jobs of
// the batch (mostly earlier ones; a later one may make a cycle) and some
// known jobs (sometimes unknown ones).
func (g *gen) dag(c *Submit) Command {
	for i := range c.Specs {
		for k := 0; k < g.r.IntN(3); k++ {
			switch {
			case g.r.IntN(10) == 0:
				c.Specs[i].DependsOn = append(c.Specs[i].DependsOn, c.IDs[g.r.IntN(len(c.IDs))])
			case i > 0 && g.r.IntN(2) == 0:
				c.Specs[i].DependsOn = append(c.Specs[i].DependsOn, c.IDs[g.r.IntN(i)])
			default:
				c.Specs[i].DependsOn = append(c.Specs[i].DependsOn, g.knownID())
			}
		}
	}
	return &SubmitDAG{IDs: c.IDs, Specs: c.Specs}
}

// bulkFilter makes a filter for a bulk command (sometimes matching
// nothing, sometimes invalid).
func (g *gen) bulkFilter() BulkFilter {
	f := BulkFilter{Limit: g.r.IntN(6)}
	if g.r.IntN(2) == 0 {
		f.Queue = g.pick(genQueues)
	}
	if g.r.IntN(3) == 0 {
		f.Plugin = g.pick(genPlugins)
	}
	if g.r.IntN(3) == 0 {
		f.State = State(1 + g.r.IntN(int(StateCancelled)))
	}
	if g.r.IntN(3) == 0 {
		f.OlderThan = time.Duration(g.r.IntN(600)) * time.Second
	}
	return f
}

// learn records the leases granted by an entry's results.
func (g *gen) learn(e Entry, res []Result) {
	for i, r := range res {
		c, ok := e.Cmds[i].(*Claim)
		if !ok {
			continue
		}
		for _, l := range r.Leases {
			g.leases = append(g.leases, Report{ID: l.Job.ID, Token: l.Token, Node: c.Node})
		}
	}
	if len(g.leases) > 200 {
		g.leases = g.leases[len(g.leases)-200:]
	}
}

// Random command sequences applied to a store and to a second store that
// is restored from the first one's snapshot midway must give identical
// results and end in identical states.
func TestPropertyDeterministicAcrossRestore(t *testing.T) {
	const entries = 1500
	for _, seed := range []uint64{1, 2, 3, 42} {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			g := &gen{r: rand.New(rand.NewPCG(seed, seed*7919)), now: t0}
			a := New()
			var b *Store
			for i := uint64(1); i <= entries; i++ {
				e := g.entry()
				data, err := Encode(e)
				if err != nil {
					t.Fatal(err)
				}
				ra, err := a.Apply(i, data)
				if err != nil {
					t.Fatalf("entry %d: %v", i, err)
				}
				checkInvariants(t, a)
				if b != nil {
					rb, err := b.Apply(i, data)
					if err != nil {
						t.Fatalf("entry %d on restored store: %v", i, err)
					}
					if !reflect.DeepEqual(ra, rb) {
						t.Fatalf("entry %d results differ:\n original %+v\n restored %+v", i, ra, rb)
					}
				}
				g.learn(e, ra)
				if i == entries/2 {
					b = New()
					if err := b.Restore(bytes.NewReader(snapshotBytes(t, a))); err != nil {
						t.Fatal(err)
					}
					checkInvariants(t, b)
				}
			}
			final := dump(a)
			assertSameState(t, final, dump(b))
			if len(final.Jobs) == 0 {
				t.Fatal("the generator created no jobs")
			}
			states := map[State]int{}
			for _, j := range final.Jobs {
				states[j.State]++
			}
			t.Logf("%d jobs at the end: %v", len(final.Jobs), states)
		})
	}
}

func FuzzApply(f *testing.F) {
	g := &gen{r: rand.New(rand.NewPCG(9, 9)), now: t0.Add(time.Minute), ids: []string{"job-000001", "job-000002", "job-000003"}}
	for i := 0; i < 40; i++ {
		b, _ := Encode(g.entry())
		f.Add(b)
	}
	seed, _ := Encode(sampleEntry())
	f.Add(seed)
	f.Fuzz(func(t *testing.T, data []byte) {
		h := busyHarness(t)
		e, derr := Decode(data)
		if derr == nil {
			// Run the entry's promotions first so a failing command can be
			// checked for changing nothing.
			h.index++
			h.s.ApplyEntry(h.index, Entry{Now: e.Now})
		}
		before := dump(h.s)
		h.index++
		res, err := h.s.Apply(h.index, data)
		if (err == nil) != (derr == nil) {
			t.Fatalf("Apply err %v, Decode err %v", err, derr)
		}
		checkInvariants(t, h.s)
		if err != nil {
			assertSameState(t, before, dump(h.s))
			return
		}
		if len(res) == 1 && res[0].Err != nil {
			assertSameState(t, before, dump(h.s))
		}
	})
}
