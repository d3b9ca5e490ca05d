package daemon_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/corral-dev/corral/daemon/api"
	"github.com/corral-dev/corral/daemon/config"
	"github.com/corral-dev/corral/daemon/testcluster"
	"github.com/corral-dev/corral/queue"
)

// submitJob submits req through c and returns the job ID.
func submitJob(t *testing.T, c *api.Client, req api.JobRequest) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for {
		resp, err := c.Submit(ctx, req)
		if err == nil {
			return resp.ID
		}
		// A leader change under a loaded test machine is retried, as a
		// client would.
		if !strings.Contains(err.Error(), "leader") || ctx.Err() != nil {
			t.Fatalf("submit %s job: %v", req.Plugin, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitFor polls job id through c until cond holds and returns the job.
func waitFor(t *testing.T, c *api.Client, id string, timeout time.Duration, what string, cond func(*api.Job) bool) *api.Job {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last *api.Job
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		j, err := c.Job(ctx, id)
		cancel()
		if err == nil {
			last = j
			if cond(j) {
				return j
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for job %s: %s; last seen: %+v (error %v)", timeout, id, what, last, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func inState(states ...string) func(*api.Job) bool {
	return func(j *api.Job) bool {
		for _, s := range states {
			if j.State == s {
				return true
			}
		}
		return false
	}
}

// applyOnLeader replicates an entry stamped now with cmds through the
// leader's raft, as the leader itself would.
func applyOnLeader(t *testing.T, c *testcluster.Cluster, now time.Time, cmds ...queue.Command) {
	t.Helper()
	data, err := queue.Encode(queue.Entry{Now: now.UTC(), Cmds: cmds})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Leader().Agent.Raft().Apply(data, 10*time.Second).Error(); err != nil {
		// Not retried: the entry may have been committed.
		t.Fatalf("apply on leader: %v", err)
	}
}

// pluginStatus returns the named plugin of the node behind c.
func pluginStatus(t *testing.T, c *api.Client, name string) api.Plugin {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	list, err := c.Plugins(ctx)
	if err != nil {
		t.Fatalf("list plugins: %v", err)
	}
	for _, p := range list.Plugins {
		if p.Name == name {
			return p
		}
	}
	t.Fatalf("node %s has no plugin %q: %+v", list.Node, name, list.Plugins)
	return api.Plugin{}
}

// liveProcsWithEnv lists the live (not zombie) processes whose environment
// contains marker.
func liveProcsWithEnv(t *testing.T, marker string) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatalf("read /proc: %v", err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil || !bytes.Contains(env, []byte(marker)) {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// The state follows the parenthesised command name.
		if i := bytes.LastIndexByte(stat, ')'); i > 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}

// TestDispatchPluginFailures runs real built-in plugin processes in a
// one-node cluster: a plugin that crashes mid-job is restarted and the job
// retried to success; a hung job is stopped at its timeout; a cancelled
// exec job ends cancelled with its whole process tree gone.
func TestDispatchPluginFailures(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Nodes: 1, Builtins: true})
	client := c.Nodes[0].Client

	t.Run("crash is restarted and retried", func(t *testing.T) {
		before := pluginStatus(t, client, "echo")
		if before.Status != "ready" || before.PID == 0 {
			t.Fatalf("echo before the crash: %+v", before)
		}
		id := submitJob(t, client, api.JobRequest{Plugin: "echo", MaxAttempts: 3,
			Payload: []byte(`{"echo":"survived","crash_attempts":1}`)})
		j := waitFor(t, client, id, 20*time.Second, "attempt 1 to end", func(j *api.Job) bool {
			return len(j.Attempts) == 1 && j.Attempts[0].Outcome != ""
		})
		if j.State != "scheduled" || j.Attempts[0].Outcome != "failed" || !strings.Contains(j.Attempts[0].Error, "crashed") {
			t.Fatalf("after the crash: state %s, attempt 1 %+v; want scheduled for a retry, error saying it crashed", j.State, j.Attempts[0])
		}
		c.Eventually(15*time.Second, "echo restarted with a new process", func() bool {
			p := pluginStatus(t, client, "echo")
			return p.Status == "ready" && p.PID != 0 && p.PID != before.PID
		})
		// Skip the retry backoff (attempt^4 + 15s + jitter): the leader
		// stamps entry times, so an entry from the future makes the retry due.
		applyOnLeader(t, c, time.Now().Add(time.Hour))
		// An idle node's claim waits on the leader for the next write; a
		// submit is one, so the now-due retry is claimed at once.
		submitJob(t, client, api.JobRequest{Plugin: "echo"})
		j = waitFor(t, client, id, 20*time.Second, "retry to succeed", inState("succeeded", "failed"))
		if j.State != "succeeded" || j.Attempt != 2 || !strings.Contains(string(j.Result), "survived") {
			t.Fatalf("after the retry: state %s, attempt %d, result %s, error %q", j.State, j.Attempt, j.Result, j.Error)
		}
	})

	t.Run("hung job is stopped at its timeout", func(t *testing.T) {
		start := time.Now()
		id := submitJob(t, client, api.JobRequest{Plugin: "echo", MaxAttempts: 1,
			Timeout: api.Duration(time.Second), Payload: []byte(`{"sleep":"30s"}`)})
		j := waitFor(t, client, id, 15*time.Second, "the timed-out job to fail", inState("failed", "succeeded"))
		if j.State != "failed" || len(j.Attempts) != 1 || !strings.Contains(j.Attempts[0].Error, "timed out") {
			t.Fatalf("hung job: state %s, attempts %+v; want failed with a timeout error", j.State, j.Attempts)
		}
		if took := time.Since(start); took > 10*time.Second {
			t.Fatalf("a 1s-timeout job of a 30s sleep took %s to end", took)
		}
	})

	t.Run("cancel kills the exec job's process tree", func(t *testing.T) {
		marker := fmt.Sprintf("CORRAL_TEST_CANCEL=%d", time.Now().UnixNano())
		key, val, _ := strings.Cut(marker, "=")
		id := submitJob(t, client, api.JobRequest{Plugin: "exec", Payload: []byte(fmt.Sprintf(
			`{"command":["sh","-c","sleep 300 & sleep 300"],"env":{%q:%q}}`, key, val))})
		waitFor(t, client, id, 15*time.Second, "the exec job to run", inState("running"))
		var pids []int
		c.Eventually(10*time.Second, "the command and its background child", func() bool {
			pids = liveProcsWithEnv(t, marker)
			return len(pids) >= 2
		})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := client.Cancel(ctx, id); err != nil {
			t.Fatalf("cancel: %v", err)
		}
		j := waitFor(t, client, id, 15*time.Second, "the job to end", inState("cancelled", "failed", "succeeded"))
		if j.State != "cancelled" {
			t.Fatalf("cancelled running job ended %s (error %q)", j.State, j.Error)
		}
		c.Eventually(5*time.Second, fmt.Sprintf("processes %v of the cancelled job to exit", pids), func() bool {
			return len(liveProcsWithEnv(t, marker)) == 0
		})
	})
}

// TestDispatchStaleReportRejected: a node whose lease is lost while the job
// runs reports the old attempt anyway. Here the job has meanwhile been
// leased again to the same node under a newer token and is running, so
// only the fencing token tells the old report apart: it must be rejected
// without changing the job, and the node goes on running jobs.
func TestDispatchStaleReportRejected(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Nodes: 1, Builtins: true, Configure: func(_ int, cfg *config.Config) {
		// One slot: the next job can only start once the stale report is in.
		cfg.Plugins["echo"] = config.Plugin{Concurrency: 1}
	}})
	n := c.Nodes[0]
	store := c.Leader().Agent.Store()
	id := submitJob(t, n.Client, api.JobRequest{Plugin: "echo", Payload: []byte(`{"echo":"stale","sleep":"2s"}`)})
	waitFor(t, n.Client, id, 15*time.Second, "the job to run", inState("running"))
	old, _ := store.Get(id)

	// In one entry: the node's lease is lost, and the job is leased again
	// to the same node (a claim the node never sees; its slot is busy).
	applyOnLeader(t, c, time.Now(),
		&queue.FailNode{Node: n.Name, Reason: "test: lease lost"},
		&queue.Claim{Node: n.Name, Slots: map[string]int{"echo": 1}, LeaseTTL: 10 * time.Minute})
	cur, _ := store.Get(id)
	if cur.State != queue.StateRunning || cur.Node != n.Name || cur.Token <= old.Token || cur.Attempt != 2 {
		t.Fatalf("job after the re-lease: state %s on %q, token %d (old %d), attempt %d", cur.State, cur.Node, cur.Token, old.Token, cur.Attempt)
	}

	// The old attempt ends (aborted or finished) and is reported with the
	// old token; its slot frees only after the report is answered, so once
	// the next job has run, the report has been judged.
	next := submitJob(t, n.Client, api.JobRequest{Plugin: "echo", Payload: []byte(`{"echo":"next"}`)})
	nj := waitFor(t, n.Client, next, 20*time.Second, "the next job", inState("succeeded", "failed"))
	if nj.State != "succeeded" {
		t.Fatalf("job after the lost lease: %s (%q)", nj.State, nj.Error)
	}
	j, _ := store.Get(id)
	if j.State != queue.StateRunning || j.Token != cur.Token || j.Attempt != 2 || len(j.Result) != 0 ||
		len(j.Attempts) != 2 || j.Attempts[0].Outcome != queue.OutcomeLost || j.Attempts[1].Outcome != queue.OutcomeInvalid {
		t.Fatalf("the stale report changed the job: state %s, token %d (want %d), result %q, attempts %+v",
			j.State, j.Token, cur.Token, j.Result, j.Attempts)
	}
}

// TestDispatchAcrossNodes uses two nodes tagged zone=a and zone=b:
// constraints pick the node, logs and progress of a job on node B are read
// through node A, and a job nobody can run says why it waits.
func TestDispatchAcrossNodes(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Nodes: 2, Builtins: true, Configure: func(i int, cfg *config.Config) {
		cfg.Tags["zone"] = string(rune('a' + i))
	}})
	a, b := c.Nodes[0], c.Nodes[1]

	t.Run("constraints match node tags", func(t *testing.T) {
		want := map[string]string{}
		for i := 0; i < 4; i++ {
			for _, n := range c.Nodes {
				zone := n.Config.Tags["zone"]
				id := submitJob(t, a.Client, api.JobRequest{Plugin: "echo", Constraints: map[string]string{"zone": zone}})
				want[id] = n.Name
			}
		}
		for id, node := range want {
			j := waitFor(t, a.Client, id, 20*time.Second, "the job to succeed", inState("succeeded", "failed"))
			if j.State != "succeeded" || j.Node != node {
				t.Fatalf("job constrained to %s's zone: state %s on node %q", node, j.State, j.Node)
			}
		}
	})

	t.Run("logs of a job on B follow through A", func(t *testing.T) {
		id := submitJob(t, a.Client, api.JobRequest{Plugin: "exec", Constraints: map[string]string{"zone": "b"},
			Payload: []byte(`{"command":["sh","-c","for i in 1 2 3 4 5; do echo line $i; sleep 0.4; done; echo oops >&2"]}`)})
		waitFor(t, a.Client, id, 15*time.Second, "the job to run", inState("running"))
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		stream, err := a.Client.Logs(ctx, id, 0, true)
		if err != nil {
			t.Fatalf("follow logs through %s: %v", a.Name, err)
		}
		defer stream.Close()
		sc := bufio.NewScanner(stream)
		var lines []string
		for sc.Scan() {
			lines = append(lines, sc.Text())
			if len(lines) == 1 {
				// The first line arrives while the job still runs.
				if j, ok := c.Leader().Agent.Store().Get(id); !ok || j.State.Terminal() {
					t.Fatalf("first log line %q only arrived after the job ended", lines[0])
				}
			}
		}
		want := []string{"line 1", "line 2", "line 3", "line 4", "line 5", "oops"}
		if strings.Join(lines, "|") != strings.Join(want, "|") {
			t.Fatalf("followed log = %q, want %q (scan error %v)", lines, want, sc.Err())
		}
		j := waitFor(t, a.Client, id, 10*time.Second, "the job to succeed", inState("succeeded", "failed"))
		if j.State != "succeeded" || j.Node != b.Name {
			t.Fatalf("exec job: %s on %s", j.State, j.Node)
		}
		if _, err := os.Stat(filepath.Join(b.Agent.DataDir(), "logs", id, "1.log")); err != nil {
			t.Fatalf("log not kept on the node that ran the job: %v", err)
		}
		whole, err := a.Client.Logs(ctx, id, 1, false)
		if err != nil {
			t.Fatal(err)
		}
		defer whole.Close()
		var buf bytes.Buffer
		if _, err := buf.ReadFrom(whole); err != nil || buf.String() != strings.Join(want, "\n")+"\n" {
			t.Fatalf("log of attempt 1 through %s = %q, %v", a.Name, buf.String(), err)
		}
	})

	t.Run("progress of a job on B shows through A", func(t *testing.T) {
		id := submitJob(t, a.Client, api.JobRequest{Plugin: "echo", Constraints: map[string]string{"zone": "b"},
			Payload: []byte(`{"sleep":"4s","progress":true}`)})
		j := waitFor(t, a.Client, id, 15*time.Second, "progress past 0%", func(j *api.Job) bool {
			return j.State == "running" && j.Progress != nil && j.Progress.Percent > 0
		})
		if j.Progress.Message != "sleeping" || j.Node != b.Name {
			t.Fatalf("progress %+v of the job on %s", j.Progress, j.Node)
		}
		j = waitFor(t, a.Client, id, 15*time.Second, "the job to end", inState("succeeded", "failed"))
		if j.State != "succeeded" || j.Progress != nil {
			t.Fatalf("finished job: state %s, progress %+v", j.State, j.Progress)
		}
	})

	t.Run("a job nobody can run says why it waits", func(t *testing.T) {
		noPlugin := submitJob(t, a.Client, api.JobRequest{Plugin: "no-such-plugin"})
		noZone := submitJob(t, a.Client, api.JobRequest{Plugin: "echo", Constraints: map[string]string{"zone": "c"}})
		for _, n := range c.Nodes {
			j := waitFor(t, n.Client, noPlugin, 10*time.Second, "a waiting reason", func(j *api.Job) bool { return j.Waiting != "" })
			if j.State != "queued" || !strings.Contains(j.Waiting, `no node has plugin "no-such-plugin"`) {
				t.Fatalf("on %s: job for a missing plugin: state %s, waiting %q", n.Name, j.State, j.Waiting)
			}
			j = waitFor(t, n.Client, noZone, 10*time.Second, "a waiting reason", func(j *api.Job) bool { return j.Waiting != "" })
			if j.State != "queued" || !strings.Contains(j.Waiting, "zone=c") {
				t.Fatalf("on %s: job constrained to zone=c: state %s, waiting %q", n.Name, j.State, j.Waiting)
			}
		}
	})
}

// TestDispatchPerPluginConcurrency floods two nodes with echo and exec
// jobs; no node ever runs more of a plugin's jobs than its concurrency, in
// the plugin host or in the replicated state.
func TestDispatchPerPluginConcurrency(t *testing.T) {
	limits := map[string]int{"echo": 2, "exec": 3}
	c := testcluster.Start(t, testcluster.Options{Nodes: 2, Builtins: true, Configure: func(_ int, cfg *config.Config) {
		for name, n := range limits {
			p := cfg.Plugins[name]
			p.Concurrency = n
			cfg.Plugins[name] = p
		}
	}})
	leader := c.Leader()
	var jobs []api.JobRequest
	for i := 0; i < 16; i++ {
		jobs = append(jobs, api.JobRequest{Plugin: "echo", Payload: []byte(fmt.Sprintf(`{"echo":"%d","sleep":"300ms"}`, i))})
		jobs = append(jobs, api.JobRequest{Plugin: "exec", Payload: []byte(`{"command":["sleep","0.2"]}`)})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	resp, err := leader.Client.SubmitBatch(ctx, jobs)
	if err != nil {
		t.Fatal(err)
	}

	peak := map[string]int{} // plugin -> most running on one node
	c.Eventually(60*time.Second, "every job to end", func() bool {
		perNode := map[string]map[string]int{}
		for _, j := range leader.Agent.Store().List(queue.Filter{State: queue.StateRunning}) {
			if perNode[j.Node] == nil {
				perNode[j.Node] = map[string]int{}
			}
			perNode[j.Node][j.Plugin]++
		}
		for node, counts := range perNode {
			for plugin, n := range counts {
				if n > limits[plugin] {
					t.Fatalf("%d %s jobs running on %s; concurrency is %d", n, plugin, node, limits[plugin])
				}
				peak[plugin] = max(peak[plugin], n)
			}
		}
		for _, n := range c.Nodes {
			for plugin, limit := range limits {
				if p := pluginStatus(t, n.Client, plugin); p.Running > limit || p.Concurrency != limit {
					t.Fatalf("%s on %s: running %d, concurrency %d; want at most %d", plugin, n.Name, p.Running, p.Concurrency, limit)
				}
			}
		}
		for _, sj := range resp.Jobs {
			j, ok := leader.Agent.Store().Get(sj.ID)
			if !ok || !j.State.Terminal() {
				return false
			}
		}
		return true
	})
	for _, sj := range resp.Jobs {
		if j, _ := leader.Agent.Store().Get(sj.ID); j.State != queue.StateSucceeded {
			t.Fatalf("job %s (%s) ended %s: %s", j.ID, j.Plugin, j.State, j.Error)
		}
	}
	if peak["echo"] < 2 {
		t.Fatalf("echo never ran 2 jobs at once on a node (peak %v): concurrency was not used", peak)
	}
}
