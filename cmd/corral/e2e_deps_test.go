package main_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// depJob is the part of a job's JSON the dependency tests read.
type depJob struct {
	ID       string          `json:"id"`
	State    string          `json:"state"`
	Error    string          `json:"error"`
	Result   json.RawMessage `json:"result"`
	Parents  []string        `json:"parents"`
	Children []string        `json:"children"`
	Waiting  string          `json:"waiting"`
	Attempts []struct {
		Started  time.Time `json:"started"`
		Finished time.Time `json:"finished"`
	} `json:"attempts"`
}

// postJSON posts body to the agent's API and returns the status and body.
func postJSON(t *testing.T, url, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func jobStatus(t *testing.T, addr, id string) depJob {
	t.Helper()
	stdout, stderr, code := cli(t, addr, "job", "status", "-json", id)
	if code != 0 {
		t.Fatalf("job status %s: exit %d: %s", id, code, stderr)
	}
	var j depJob
	if err := json.Unmarshal([]byte(stdout), &j); err != nil {
		t.Fatalf("job status %s: %v in %q", id, err, stdout)
	}
	return j
}

// TestDependenciesChainRunsInOrder: a batch of three jobs chained by local
// names (a -> b -> c) is submitted in one request; b and c wait blocked,
// then each starts only after its parent finished, and job status shows
// the edges with the states.
func TestDependenciesChainRunsInOrder(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ports := freePorts(t, 3)
	agent := startAgent(t, devNode(ports), ports[0], devArgs(dir, ports)...)

	code, body := postJSON(t, agent.httpURL+"/v1/jobs", `{"jobs": [
		{"name": "c", "plugin": "echo", "payload": {"echo": "c"}, "depends_on": ["b"]},
		{"name": "a", "plugin": "echo", "payload": {"echo": "a", "sleep": "1s"}},
		{"name": "b", "plugin": "echo", "payload": {"echo": "b", "sleep": "100ms"}, "depends_on": ["a"]}
	]}`)
	if code != http.StatusOK {
		t.Fatalf("batch submit: %d %s", code, body)
	}
	var sub struct {
		Jobs []struct {
			Name, ID string
		} `json:"jobs"`
	}
	if err := json.Unmarshal([]byte(body), &sub); err != nil || len(sub.Jobs) != 3 {
		t.Fatalf("batch submit answer %q: %v", body, err)
	}
	id := map[string]string{}
	for _, j := range sub.Jobs {
		id[j.Name] = j.ID
	}
	if c := jobStatus(t, agent.httpURL, id["c"]); c.State != "blocked" || len(c.Parents) != 1 || c.Parents[0] != id["b"] ||
		c.Waiting != "waiting for 1 of 1 parents to succeed: "+id["b"]+" (blocked)" {
		t.Fatalf("c right after submit: %+v (want blocked on %s, which is blocked)", c, id["b"])
	}
	stdout, _, _ := cli(t, agent.httpURL, "job", "list", "-state", "blocked")
	if !strings.Contains(stdout, id["c"]) {
		t.Fatalf("job list -state blocked does not list c %s:\n%s", id["c"], stdout)
	}

	if _, stderr, code := cli(t, agent.httpURL, "job", "wait", "-timeout", "30s", id["c"]); code != 0 {
		t.Fatalf("job wait c: exit %d: %s", code, stderr)
	}
	a, b, c := jobStatus(t, agent.httpURL, id["a"]), jobStatus(t, agent.httpURL, id["b"]), jobStatus(t, agent.httpURL, id["c"])
	for _, j := range []depJob{a, b, c} {
		if j.State != "succeeded" || len(j.Attempts) != 1 {
			t.Fatalf("job %s: %+v", j.ID, j)
		}
	}
	if b.Attempts[0].Started.Before(a.Attempts[0].Finished) || c.Attempts[0].Started.Before(b.Attempts[0].Finished) {
		t.Fatalf("out of order: a %v-%v, b %v-%v, c started %v", a.Attempts[0].Started, a.Attempts[0].Finished,
			b.Attempts[0].Started, b.Attempts[0].Finished, c.Attempts[0].Started)
	}
	if len(b.Children) != 1 || b.Children[0] != id["c"] || len(a.Children) != 1 || a.Children[0] != id["b"] {
		t.Fatalf("children: a %v, b %v", a.Children, b.Children)
	}
	stdout, _, _ = cli(t, agent.httpURL, "job", "status", id["b"])
	for _, want := range []string{"Dependencies", "parent    " + id["a"] + "  succeeded", "child     " + id["c"] + "  succeeded"} {
		if !strings.Contains(stdout, want) {
			t.Fatalf("job status b lacks %q:\n%s", want, stdout)
		}
	}
}

// TestDependenciesFailedParentCancelsChild: a child submitted with
// -depends-on on a parent that fails for good ends cancelled with the
// reason; a cycle or an unknown parent is rejected with a clear message.
func TestDependenciesFailedParentCancelsChild(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ports := freePorts(t, 3)
	agent := startAgent(t, devNode(ports), ports[0], devArgs(dir, ports)...)

	stdout, stderr, code := cli(t, agent.httpURL, "job", "submit", "-max-attempts", "1", "echo", `{"fail_attempts": 1, "sleep": "200ms"}`)
	if code != 0 {
		t.Fatalf("submit parent: exit %d: %s", code, stderr)
	}
	parent := strings.TrimSpace(stdout)
	stdout, stderr, code = cli(t, agent.httpURL, "job", "submit", "-depends-on", parent, "echo", `{"echo": "never"}`)
	if code != 0 {
		t.Fatalf("submit child: exit %d: %s", code, stderr)
	}
	child := strings.TrimSpace(stdout)
	if _, _, code := cli(t, agent.httpURL, "job", "wait", "-timeout", "30s", child); code != 3 {
		t.Fatalf("job wait child: exit %d, want 3 (cancelled)", code)
	}
	j := jobStatus(t, agent.httpURL, child)
	if j.State != "cancelled" || j.Error != "parent "+parent+" failed" || len(j.Attempts) != 0 {
		t.Fatalf("child: %+v (want cancelled with error %q, never run)", j, "parent "+parent+" failed")
	}
	stdout, _, _ = cli(t, agent.httpURL, "job", "status", child)
	if !strings.Contains(stdout, "parent "+parent+" failed") || !strings.Contains(stdout, parent+"  failed") {
		t.Fatalf("job status of the child does not show the reason and the failed parent:\n%s", stdout)
	}

	// Rejections leave nothing behind.
	_, stderr, code = cli(t, agent.httpURL, "job", "submit", "-depends-on", parent, "echo")
	if code != 1 || !strings.Contains(stderr, "is failed: retry it first") {
		t.Fatalf("submit on a failed parent: exit %d: %s", code, stderr)
	}
	_, stderr, code = cli(t, agent.httpURL, "job", "submit", "-depends-on", "01NOSUCHJOB", "echo")
	if code != 1 || !strings.Contains(stderr, "parent 01NOSUCHJOB not found") {
		t.Fatalf("submit on an unknown parent: exit %d: %s", code, stderr)
	}
	code, body := postJSON(t, agent.httpURL+"/v1/jobs", `{"jobs": [
		{"name": "x", "plugin": "echo", "depends_on": ["y"]},
		{"name": "y", "plugin": "echo", "depends_on": ["x"]}
	]}`)
	if code != http.StatusBadRequest || !strings.Contains(body, "cycle: x -> y -> x") {
		t.Fatalf("cycle: %d %s", code, body)
	}
	stdout, _, _ = cli(t, agent.httpURL, "job", "list", "-json")
	var list struct {
		Jobs []depJob `json:"jobs"`
	}
	if err := json.Unmarshal([]byte(stdout), &list); err != nil || len(list.Jobs) != 2 {
		t.Fatalf("want only the parent and the child after the rejected submits, got %d jobs (%v)", len(list.Jobs), err)
	}
}
