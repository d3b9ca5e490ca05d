package daemon_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/corral-dev/corral/daemon/api"
	"github.com/corral-dev/corral/daemon/testcluster"
)

// scrape returns n's /v1/metrics as text and as series → value (series
// keys as the exposition prints them: name{label="v",...}).
func scrape(t *testing.T, n *testcluster.Node) ([]byte, map[string]float64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	body, err := n.Client.Metrics(ctx)
	if err != nil {
		t.Fatalf("scrape %s: %v", n.Name, err)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("%s: bad sample line %q", n.Name, line)
		}
		out[line[:i]] = v
	}
	return body, out
}

// submitMany submits reqs in one batch and returns the IDs. Jobs without
// a unique key get one, so the batch can be sent again when a leader
// change cuts the call short.
func submitMany(t *testing.T, c *api.Client, reqs []api.JobRequest) []string {
	t.Helper()
	for i := range reqs {
		if reqs[i].UniqueKey == "" {
			reqs[i].UniqueKey = fmt.Sprintf("%s-%d-%d", t.Name(), time.Now().UnixNano(), i)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var ids []string
	retrying(t, "submit batch", func() error {
		resp, err := c.SubmitBatch(ctx, reqs)
		if err != nil {
			return err
		}
		ids = ids[:0]
		for _, j := range resp.Jobs {
			if j.Error != "" {
				t.Fatalf("submit: %s", j.Error)
			}
			ids = append(ids, j.ID)
		}
		return nil
	})
	return ids
}

func echoJobs(n int, payload string, maxAttempts int, delay time.Duration) []api.JobRequest {
	out := make([]api.JobRequest, n)
	for i := range out {
		out[i] = api.JobRequest{Plugin: "echo", Payload: json.RawMessage(payload), MaxAttempts: maxAttempts, Delay: api.Duration(delay)}
	}
	return out
}

// TestMetricsAddUp drives jobs through a 3-node cluster — successes,
// failures retried by hand and failing again, cancellations — and checks
// on every node that the depth gauges (from the FSM) and the outcome
// counters (observed as the FSM applies) agree with what was done and
// with each other.
func TestMetricsAddUp(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Nodes: 3, Builtins: true})
	leader := c.Leader()
	const nOK, nFail, nCancel = 40, 6, 5
	submitMany(t, leader.Client, echoJobs(nOK, `{"echo":"ok"}`, 0, 0))
	failIDs := submitMany(t, c.Nodes[1].Client, echoJobs(nFail, `{"fail_attempts":5}`, 1, 0))
	cancelIDs := submitMany(t, c.Nodes[2].Client, echoJobs(nCancel, `{}`, 0, time.Hour))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, id := range cancelIDs {
		retrying(t, "cancel", func() error {
			if j, ok := c.Leader().Agent.Store().Get(id); ok && j.State.Terminal() {
				return nil // an earlier call was applied
			}
			_, err := c.Nodes[0].Client.Cancel(ctx, id)
			return err
		})
	}
	failedOnce := func() bool {
		for _, id := range failIDs {
			j, ok := leader.Agent.Store().Get(id)
			if !ok || j.State.String() != "failed" {
				return false
			}
		}
		return true
	}
	c.Eventually(30*time.Second, "every failing job failed", failedOnce)
	for _, id := range failIDs {
		retrying(t, "retry", func() error {
			// The leader's replica has every committed retry applied.
			if j, ok := c.Leader().Agent.Store().Get(id); ok && (j.State.String() != "failed" || j.Attempt > 1) {
				return nil // an earlier call was applied
			}
			_, err := c.Nodes[2].Client.Retry(ctx, id)
			return err
		})
	}
	c.Eventually(30*time.Second, "every retried job failed again", func() bool {
		for _, id := range failIDs {
			j, ok := leader.Agent.Store().Get(id)
			if !ok || j.State.String() != "failed" || j.Attempt != 2 {
				return false
			}
		}
		return true
	})

	want := map[string]float64{
		`corral_queue_jobs{queue="default",state="succeeded"}`:                   nOK,
		`corral_queue_jobs{queue="default",state="failed"}`:                      nFail,
		`corral_queue_jobs{queue="default",state="cancelled"}`:                   nCancel,
		`corral_queue_jobs{queue="default",state="queued"}`:                      0,
		`corral_queue_jobs{queue="default",state="running"}`:                     0,
		`corral_queue_jobs{queue="default",state="scheduled"}`:                   0,
		`corral_jobs_submitted_total{queue="default"}`:                           nOK + nFail + nCancel,
		`corral_jobs_succeeded_total{plugin="echo",queue="default"}`:             nOK,
		`corral_jobs_failed_total{plugin="echo",queue="default"}`:                2 * nFail,
		`corral_jobs_retried_total{plugin="echo",queue="default"}`:               nFail,
		`corral_jobs_cancelled_total{queue="default"}`:                           nCancel,
		`corral_job_end_to_end_seconds_count{queue="default",state="succeeded"}`: nOK,
		`corral_job_queue_wait_seconds_count{queue="default"}`:                   nOK + 2*nFail,
	}
	for _, n := range c.Nodes {
		var got map[string]float64
		var diff []string
		ok := func() bool {
			_, got = scrape(t, n)
			diff = diff[:0]
			for k, v := range want {
				if got[k] != v {
					diff = append(diff, fmt.Sprintf("%s = %v, want %v", k, got[k], v))
				}
			}
			return len(diff) == 0
		}
		deadline := time.Now().Add(15 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: metrics do not add up:\n%s", n.Name, strings.Join(diff, "\n"))
			}
			time.Sleep(50 * time.Millisecond)
		}
		// Depth sums to what was submitted (nothing purged yet).
		var depth float64
		for k, v := range got {
			if strings.HasPrefix(k, `corral_queue_jobs{`) {
				depth += v
			}
		}
		if sub := got[`corral_jobs_submitted_total{queue="default"}`]; depth != sub {
			t.Errorf("%s: depth sums to %v, submitted_total is %v", n.Name, depth, sub)
		}
		leaderWant := 0.0
		if n == leader {
			leaderWant = 1
		}
		if got["corral_is_leader"] != leaderWant {
			t.Errorf("%s: corral_is_leader = %v, want %v", n.Name, got["corral_is_leader"], leaderWant)
		}
		if _, ok := got[`corral_plugin_free_slots{plugin="echo"}`]; !ok {
			t.Errorf("%s: no corral_plugin_free_slots for echo", n.Name)
		}
	}
}

// checkAlertRules runs `promtool check rules` on the README's example
// alert rules (the yaml block after "Three alert rules").
func checkAlertRules(t *testing.T, promtool string, readme []byte) {
	t.Helper()
	_, after, ok := bytes.Cut(readme, []byte("Three alert rules"))
	if !ok {
		t.Fatal("README has no example alert rules")
	}
	_, block, _ := bytes.Cut(after, []byte("```yaml\n"))
	block, _, _ = bytes.Cut(block, []byte("```"))
	file := filepath.Join(t.TempDir(), "rules.yml")
	if err := os.WriteFile(file, block, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(promtool, "check", "rules", file).CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("SUCCESS: 3 rules")) {
		t.Errorf("promtool check rules on the README's alert rules: %v\n%s", err, out)
	}
}

var uuidInName = regexp.MustCompile(`^[a-z_:]*[0-9a-f]{8}_?[0-9a-f]{4}`)

// TestMetricsPromtoolClean runs `promtool check metrics` on every node of
// a busy 3-node cluster (jobs done and failed, HTTP errors, raft
// replication to peers, gossip) and wants no findings; it also checks the
// families' names hold no node UUIDs and that gauges which still hold
// (corral_is_leader, raft state) are there.
func TestMetricsPromtoolClean(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (Debian package prometheus; .ci/run installs it)")
	}
	c := testcluster.Start(t, testcluster.Options{Nodes: 3, Builtins: true})
	leader := c.Leader()
	ids := submitMany(t, c.Nodes[1].Client, append(echoJobs(30, `{"echo":"x"}`, 0, 0), echoJobs(3, `{"fail_attempts":3}`, 1, 0)...))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, _ = leader.Client.Job(ctx, "no-such-job") // a 404 for the HTTP counter
	c.Eventually(30*time.Second, "jobs done", func() bool {
		for _, id := range ids {
			if j, ok := leader.Agent.Store().Get(id); !ok || !j.State.Terminal() {
				return false
			}
		}
		return true
	})
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	checkAlertRules(t, promtool, readme)
	for _, n := range c.Nodes {
		body, got := scrape(t, n)
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = bytes.NewReader(body)
		out, err := cmd.CombinedOutput()
		if err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Errorf("%s: promtool check metrics: %v\n%s", n.Name, err, out)
		}
		families := map[string]bool{}
		for k := range got {
			name, _, _ := strings.Cut(k, "{")
			families[name] = true
			if uuidInName.MatchString(strings.TrimPrefix(name, "corral_")) || strings.Contains(name, n.Agent.NodeID()[:8]) {
				t.Errorf("%s: family %s has an ID in its name", n.Name, name)
			}
		}
		for _, f := range []string{"corral_is_leader", "go_goroutines", "process_resident_memory_bytes", "corral_queue_jobs", "corral_raft_state_follower_total"} {
			if !families[f] {
				t.Errorf("%s: family %s missing", n.Name, f)
			}
		}
		if _, ok := got[`corral_http_requests_total{code="404",method="GET"}`]; n == leader && !ok {
			t.Errorf("%s: the 404 was not counted", n.Name)
		}
		for f := range families {
			bridged := false
			for _, p := range []string{"corral_raft_", "corral_serf_", "corral_memberlist_", "corral_applier_", "go_", "process_", "promhttp_"} {
				bridged = bridged || strings.HasPrefix(f, p)
			}
			base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(f, "_bucket"), "_sum"), "_count")
			if !bridged && !bytes.Contains(readme, []byte("`"+base)) {
				t.Errorf("family %s is not documented in the README's Metrics section", base)
			}
		}
		if n == leader && got["corral_is_leader"] != 1 {
			t.Errorf("%s: corral_is_leader is not 1", n.Name)
		}
	}
}
