package main_test

import (
	"strings"
	"testing"
	"time"
)

// planView is the part of `corral job plan -json` the tests use.
type planView struct {
	Queue       string `json:"queue"`
	RunnableNow bool   `json:"runnable_now"`
	Nodes       []struct {
		Node     string `json:"node"`
		Eligible bool   `json:"eligible"`
		Reason   string `json:"reason"`
	} `json:"nodes"`
	Reasons  []string `json:"reasons"`
	Ahead    int      `json:"ahead"`
	Warnings []string `json:"warnings"`
}

func (p planView) reasonOf(node string) (string, bool) {
	for _, n := range p.Nodes {
		if n.Node == node {
			return n.Reason, n.Eligible
		}
	}
	return "<not listed>", false
}

// TestJobPlanNamesEachNodesReason: three agents, one in zone a, one in
// zone b, one without the echo plugin. `corral job plan` for an echo job
// constrained to zone a names the one node that can run it and, for each
// other, why not (the tag that differs, the missing plugin); then what
// the queue holds back (a pause, a rate limit, the jobs ahead) and a node
// that died. Nothing is submitted.
func TestJobPlanNamesEachNodesReason(t *testing.T) {
	t.Parallel()
	c := &cluster{t: t, opts: clusterOpts{bootstrapExpect: 3, cleanupAfter: time.Minute}}
	for i, name := range []string{"n1", "n2", "n3"} {
		nd := c.newNode(name)
		nd.tags = []string{"  zone = \"a\"\n", "  zone = \"b\"\n", ""}[i]
		if name == "n3" {
			nd.extra = "plugin \"echo\" {\n  enabled = false\n}\n"
		}
		c.nodes = append(c.nodes, nd)
	}
	for _, nd := range c.nodes {
		for _, other := range c.nodes {
			if other != nd {
				nd.join = append(nd.join, other.serfAddr())
			}
		}
		nd.expect = 3
	}
	for _, nd := range c.nodes {
		nd.start()
	}
	v := c.waitPeers(30*time.Second, "3 voters and a leader", func(v peersView) bool { return v.votersAre("n1", "n2", "n3") })
	ld := c.byName(v.leader)
	n1 := c.byName("n1")

	var p planView
	eventually(t, 20*time.Second, "a plan that sees every node's plugins", func() bool {
		if !cliJSON(t, ld, &p, "job", "plan", "-json", "-constraint", "zone=a", "echo", `{}`) {
			return false
		}
		_, ok := p.reasonOf("n1")
		return ok && len(p.Nodes) == 3
	})
	if !p.RunnableNow || len(p.Reasons) != 0 || len(p.Warnings) != 0 {
		t.Fatalf("plan %+v: want runnable now with no reasons or warnings", p)
	}
	if r, _ := p.reasonOf("n2"); r != "constraint zone=a: node has zone=b" {
		t.Fatalf("n2: reason %q", r)
	}
	if r, _ := p.reasonOf("n3"); !strings.HasPrefix(r, `plugin "echo" is not installed (it has `) {
		t.Fatalf("n3: reason %q", r)
	}

	// The human form names the same reasons; a plugin nobody has warns.
	stdout, stderr, code := cli(t, ld.url(), "job", "plan", "-constraint", "zone=a", "-queue", "plans", "nobody-has-it")
	if code != 0 || !strings.Contains(stdout, "would wait") || !strings.Contains(stdout, `plugin "nobody-has-it" is not installed`) ||
		!strings.Contains(stderr, `warning: no node has plugin "nobody-has-it"`) {
		t.Fatalf("plan of a missing plugin: exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
	}

	// The queue's state: paused, rate limited, jobs ahead.
	submit(t, n1, "-queue", "plans", "-priority", "5", "nobody-has-it", `{}`)
	submit(t, n1, "-queue", "plans", "nobody-has-it", `{}`)
	if _, stderr, code := cli(t, ld.url(), "queue", "pause", "plans"); code != 0 {
		t.Fatalf("pause: %s", stderr)
	}
	if _, stderr, code := cli(t, ld.url(), "queue", "set", "-rate", "1/h", "-burst", "1", "plans"); code != 0 {
		t.Fatalf("queue set: %s", stderr)
	}
	eventually(t, 10*time.Second, "the plan sees the paused, rate-limited queue", func() bool {
		return cliJSON(t, n1, &p, "job", "plan", "-json", "-queue", "plans", "-priority", "5", "echo") && len(p.Reasons) == 2
	})
	if p.RunnableNow || p.Ahead != 1 || !strings.Contains(p.Reasons[0], `queue "plans" is paused`) ||
		!strings.Contains(p.Reasons[1], `queue "plans" is rate limited (1/h, burst 1)`) {
		t.Fatalf("plan %+v: want paused, rate limited, 1 job ahead", p)
	}
	var jobs struct {
		Jobs []jobInfo `json:"jobs"`
	}
	if !cliJSON(t, n1, &jobs, "job", "list", "-json", "-queue", "plans") || len(jobs.Jobs) != 2 {
		t.Fatalf("job plan submitted something: %d jobs in the queue, want the 2 submitted", len(jobs.Jobs))
	}

	// A dead node is listed with its state.
	victim := c.byName("n3")
	if victim == ld {
		victim = c.byName("n2")
	}
	victim.kill()
	survivor := c.alive()[0]
	eventually(t, 30*time.Second, "the plan lists the dead node as failed", func() bool {
		if !cliJSON(t, survivor, &p, "job", "plan", "-json", "echo") {
			return false
		}
		r, _ := p.reasonOf(victim.name)
		return r == "node is failed"
	})
}
