package main_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// queueCounts reads the per-state counts of queue name with a blocking
// query: it answers once the agent's index passes index (or after wait),
// so polling it costs no sleeps. It returns the counts and the index to
// pass next.
func queueCounts(t *testing.T, addr, name string, index uint64) (map[string]int, uint64) {
	t.Helper()
	client := &http.Client{Timeout: 20 * time.Second}
	resp, err := client.Get(fmt.Sprintf("%s/v1/queues?index=%d&wait=5s", addr, index))
	if err != nil {
		t.Fatalf("list queues: %v", err)
	}
	defer resp.Body.Close()
	var out struct {
		Queues []struct {
			Name   string         `json:"name"`
			Counts map[string]int `json:"counts"`
		} `json:"queues"`
		Index uint64 `json:"index"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&out) != nil {
		t.Fatalf("list queues: HTTP %d", resp.StatusCode)
	}
	for _, q := range out.Queues {
		if q.Name == name {
			return q.Counts, out.Index
		}
	}
	return nil, out.Index
}

// waitCounts blocks (on the agent's index, no sleeps) until cond holds for
// the counts of queue name, or fails the test after timeout.
func waitCounts(t *testing.T, addr, name string, timeout time.Duration, what string, cond func(map[string]int) bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var index uint64
	for {
		var counts map[string]int
		counts, index = queueCounts(t, addr, name, index)
		if cond(counts) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s; counts %v", timeout, what, counts)
		}
	}
}

// appliedIndex reads the agent's applied raft index.
func appliedIndex(t *testing.T, addr string) uint64 {
	t.Helper()
	resp, err := http.Get(addr + "/v1/agent/self")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var self struct {
		AppliedIndex uint64 `json:"applied_index"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&self); err != nil || self.AppliedIndex == 0 {
		t.Fatalf("agent self: %v (applied index %d)", err, self.AppliedIndex)
	}
	return self.AppliedIndex
}

// TestBulkRetryThousandFailedJobs: 1,000 jobs fail their only attempt; a
// dry run counts them; without -yes and a terminal the retry refuses;
// `corral job retry -state failed -yes` retries all 1,000 in at most a
// handful of raft entries (the queue is paused meanwhile, so nothing else
// writes); resumed, every job runs again and succeeds on its second
// attempt. job list pages through them, and the queue cannot be deleted
// while it holds them.
func TestBulkRetryThousandFailedJobs(t *testing.T) {
	t.Parallel()
	ports := freePorts(t, 3)
	agent := startAgent(t, devNode(ports), ports[0], devArgs(t.TempDir(), ports)...)
	addr := agent.httpURL
	const n = 1000

	// echo fails while attempt <= fail_attempts: with one attempt allowed
	// every job ends failed, and a retry's second attempt succeeds.
	var batch bytes.Buffer
	batch.WriteString(`{"jobs":[`)
	for i := range n {
		if i > 0 {
			batch.WriteByte(',')
		}
		fmt.Fprintf(&batch, `{"queue":"bulk","plugin":"echo","max_attempts":1,"payload":{"echo":"%d","fail_attempts":1}}`, i)
	}
	batch.WriteString(`]}`)
	resp, err := http.Post(addr+"/v1/jobs", "application/json", &batch)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("submit %d jobs: HTTP %d", n, resp.StatusCode)
	}
	waitCounts(t, addr, "bulk", 60*time.Second, "1,000 failed jobs", func(c map[string]int) bool { return c["failed"] == n })

	stdout, stderr, code := cli(t, addr, "job", "retry", "-state", "failed", "-dry-run")
	if code != 0 || strings.TrimSpace(stdout) != "1000 jobs match (dry run: nothing retried)" {
		t.Fatalf("dry run: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	stdout, stderr, code = cli(t, addr, "job", "retry", "-state", "failed")
	if code != 1 || stdout != "" || stderr != "error: retry 1000 jobs needs confirmation, and stdin is not a terminal: pass -yes\n" {
		t.Fatalf("retry without -yes and a terminal: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if _, stderr, code := cli(t, addr, "job", "retry", "-state", "queued", "-yes"); code != 1 || !strings.Contains(stderr, "cannot retry queued jobs") {
		t.Fatalf("retry of queued jobs: exit %d, %q", code, stderr)
	}

	// Nothing else writes while the queue is paused: the index moves only
	// for the retry.
	if _, stderr, code := cli(t, addr, "queue", "pause", "bulk"); code != 0 {
		t.Fatalf("pause: %q", stderr)
	}
	before := appliedIndex(t, addr)
	stdout, stderr, code = cli(t, addr, "job", "retry", "-state", "failed", "-yes")
	after := appliedIndex(t, addr)
	if code != 0 || !strings.HasPrefix(stdout, "Retried 1000 jobs (") {
		t.Fatalf("bulk retry: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if after-before > 5 {
		t.Fatalf("bulk retry of %d jobs moved the raft index by %d (%d -> %d), want at most 5", n, after-before, before, after)
	}
	t.Logf("bulk retry: %s(raft index %d -> %d)", stdout, before, after)
	counts, _ := queueCounts(t, addr, "bulk", 0)
	if counts["queued"] != n || counts["failed"] != 0 {
		t.Fatalf("counts after the retry: %v, want all %d queued", counts, n)
	}

	if _, stderr, code := cli(t, addr, "queue", "resume", "bulk"); code != 0 {
		t.Fatalf("resume: %q", stderr)
	}
	waitCounts(t, addr, "bulk", 60*time.Second, "1,000 finished jobs", func(c map[string]int) bool { return c["succeeded"]+c["failed"] == n })

	var list struct {
		Jobs []struct {
			ID      string `json:"id"`
			State   string `json:"state"`
			Attempt int    `json:"attempt"`
			Error   string `json:"error"`
		} `json:"jobs"`
		Total      *int   `json:"total"`
		NextCursor string `json:"next_cursor"`
	}
	stdout, stderr, code = cli(t, addr, "job", "list", "-queue", "bulk", "-plugin", "echo", "-since", "1h", "-limit", "0", "-json")
	if code != 0 || json.Unmarshal([]byte(stdout), &list) != nil {
		t.Fatalf("job list -limit 0: exit %d, %q", code, stderr)
	}
	// Every job ran a second attempt, and echo succeeds on it.
	seen := map[string]bool{}
	for _, j := range list.Jobs {
		if j.Attempt != 2 || seen[j.ID] || j.State != "succeeded" {
			t.Fatalf("job %s: %s after %d attempts, error %q (listed before: %v); want it succeeded on attempt 2", j.ID, j.State, j.Attempt, j.Error, seen[j.ID])
		}
		seen[j.ID] = true
	}
	if len(seen) != n || list.NextCursor != "" {
		t.Fatalf("job list -limit 0 listed %d jobs (cursor %q), want %d", len(seen), list.NextCursor, n)
	}
	stdout, _, code = cli(t, addr, "job", "list", "-queue", "bulk")
	if code != 0 || strings.Count(stdout, "\n") != 102 || !strings.Contains(stdout, "Showing the newest 100 of 1000 matching jobs; -limit=N shows more, -limit=0 all") {
		t.Fatalf("default job list: exit %d, %d lines, footer missing:\n%s", code, strings.Count(stdout, "\n"), tail(stdout, 3))
	}
	if !strings.Contains(stdout, "Priority") {
		t.Fatal("job list has no priority column")
	}

	_, stderr, code = cli(t, addr, "queue", "delete", "bulk")
	if code != 1 || !strings.Contains(stderr, "bulk still holds "+strconv.Itoa(n)+" jobs (") || strings.Count(stderr, "\n") != 1 {
		t.Fatalf("delete of a queue with jobs: exit %d, %q", code, stderr)
	}
	_, stderr, code = cli(t, addr, "queue", "delete", "nosuchqueue")
	if code != 1 || !strings.Contains(stderr, "queue nosuchqueue not found") {
		t.Fatalf("delete of an unknown queue: exit %d, %q", code, stderr)
	}
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
