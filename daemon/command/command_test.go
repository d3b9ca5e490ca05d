package command

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/corral-dev/corral/daemon"
	"github.com/corral-dev/corral/daemon/api"
)

// expect checks the exit code and that stdout/stderr contain the given
// substrings.
func expect(t *testing.T, r cliResult, code int, stdout, stderr []string) {
	t.Helper()
	if r.code != code {
		t.Errorf("exit code = %d, want %d\nstdout: %s\nstderr: %s", r.code, code, r.stdout, r.stderr)
	}
	for _, s := range stdout {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("stdout does not contain %q:\n%s", s, r.stdout)
		}
	}
	for _, s := range stderr {
		if !strings.Contains(r.stderr, s) {
			t.Errorf("stderr does not contain %q:\n%s", s, r.stderr)
		}
	}
}

func TestJobSubmit(t *testing.T) {
	f := newFakeAPI(t)
	r := f.cli("job", "submit", "-queue", "mail", "-priority", "5", "-delay", "10m", "-max-attempts", "3",
		"-timeout", "1m", "-unique", "k1", "-unique-for", "1h", "-constraint", "zone=a", "-constraint", "disk=ssd",
		"echo", `{"echo": "hi"}`)
	expect(t, r, 0, nil, nil)
	if r.stdout != "01JOB\n" {
		t.Errorf("stdout = %q, want just the job ID", r.stdout)
	}
	want := api.JobRequest{Queue: "mail", Plugin: "echo", Payload: json.RawMessage(`{"echo":"hi"}`), Priority: 5,
		MaxAttempts: 3, Timeout: api.Duration(time.Minute), Delay: api.Duration(10 * time.Minute), UniqueKey: "k1",
		UniqueFor: api.Duration(time.Hour), Constraints: map[string]string{"zone": "a", "disk": "ssd"}}
	if got := f.submits[0]; !reflect.DeepEqual(got, want) {
		t.Errorf("submitted %+v\nwant      %+v", got, want)
	}

	// -at, and JSON output.
	r = f.cli("job", "submit", "-json", "-at", "2030-01-02T15:04:05Z", "echo")
	expect(t, r, 0, []string{`"id": "01JOB"`, `"index": 5`}, nil)
	if at := f.submits[1].RunAt; at == nil || !at.Equal(time.Date(2030, 1, 2, 15, 4, 5, 0, time.UTC)) || f.submits[1].Payload != nil {
		t.Errorf("second submit = %+v", f.submits[1])
	}

	// An existing unique job is reported on stderr; stdout stays the ID.
	r = f.cli("job", "submit", "-unique", "dup", "echo", "{}")
	expect(t, r, 0, []string{"01JOB"}, []string{"already exists", `"dup"`})

	// Server-side rejection: one line, exit 1.
	r = f.cli("job", "submit", "nope")
	expect(t, r, 1, nil, []string{`error: no node has plugin "nope"`})
	if strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
		t.Errorf("error is not one line: %q", r.stderr)
	}
}

func TestJobSubmitPayloads(t *testing.T) {
	f := newFakeAPI(t)
	env := map[string]string{EnvAddress: f.srv.URL}
	file := filepath.Join(t.TempDir(), "payload.json")
	if err := os.WriteFile(file, []byte("{\"command\": [\"/bin/true\"]}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	text := filepath.Join(t.TempDir(), "note.txt")
	if err := os.WriteFile(text, []byte("plain words"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, stdin, arg, want string
	}{
		{"inline JSON", "", `[1, 2]`, `[1,2]`},
		{"inline text becomes a JSON string", "", `hello world`, `"hello world"`},
		{"number", "", `42`, `42`},
		{"file", "", "@" + file, `{"command":["/bin/true"]}`},
		{"text file", "", "@" + text, `"plain words"`},
		{"stdin JSON", "{\"echo\": \"from stdin\"}\n", "-", `{"echo":"from stdin"}`},
		{"stdin text", "not json\n", "-", `"not json\n"`},
	}
	for i, tc := range cases {
		r := runCLI(t, env, tc.stdin, false, "job", "submit", "echo", tc.arg)
		expect(t, r, 0, []string{"01JOB"}, nil)
		if got := string(f.submits[i].Payload); got != tc.want {
			t.Errorf("%s: payload sent = %s, want %s", tc.name, got, tc.want)
		}
	}

	r := runCLI(t, env, "", false, "job", "submit", "echo", "@"+filepath.Join(t.TempDir(), "missing.json"))
	expect(t, r, 1, nil, []string{"error: read payload:", "missing.json"})
	if len(f.submits) != len(cases) {
		t.Errorf("a job was submitted although its payload could not be read")
	}
}

func TestJobSubmitWait(t *testing.T) {
	f := newFakeAPI(t)
	f.addJob("01JOB", "queued", "running", "succeeded")
	f.addJob("01FAIL", "running", "failed")

	r := f.cli("job", "submit", "-wait", "echo", "{}")
	expect(t, r, 0, []string{"01JOB\n", "Job 01JOB succeeded after 1 attempt", `Result: "hi"`}, nil)

	r = f.cli("job", "submit", "-wait", "fail")
	expect(t, r, 2, []string{"01FAIL\n", "Job 01FAIL failed after 3 attempts: boom: exit status 1"}, nil)

	r = f.cli("job", "submit", "-wait", "-json", "echo")
	expect(t, r, 0, nil, nil)
	var j api.Job
	if err := json.Unmarshal([]byte(r.stdout), &j); err != nil || j.State != "succeeded" {
		t.Errorf("-wait -json output %q: %v", r.stdout, err)
	}
}

func TestJobWaitExitCodes(t *testing.T) {
	f := newFakeAPI(t)
	f.addJob("ok", "queued", "running", "succeeded")
	f.addJob("bad", "running", "failed")
	f.addJob("gone", "queued", "cancelled")
	f.addJob("slow", "queued", "running")

	expect(t, f.cli("job", "wait", "ok"), 0, []string{"Job ok succeeded"}, nil)
	expect(t, f.cli("job", "wait", "bad"), 2, []string{"Job bad failed after 3 attempts: boom"}, nil)
	expect(t, f.cli("job", "wait", "gone"), 3, []string{"Job gone was cancelled"}, nil)

	start := time.Now()
	r := f.cli("job", "wait", "slow", "-timeout", "300ms")
	expect(t, r, 4, nil, []string{"error: timed out after 300ms waiting for job slow (state running)", "corral job status slow"})
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("wait with -timeout 300ms took %s", d)
	}

	expect(t, f.cli("job", "wait", "missing"), 1, nil, []string{"error: job missing not found"})

	// The waits were blocking queries that moved the index forward.
	f.mu.Lock()
	var waits []string
	for _, q := range f.requests {
		if strings.HasPrefix(q, "GET /v1/jobs/ok?") {
			waits = append(waits, q)
		}
	}
	f.mu.Unlock()
	if len(waits) != 3 || !strings.Contains(waits[0], "index=0") || !strings.Contains(waits[2], "index=2") || !strings.Contains(waits[1], "wait=") {
		t.Errorf("blocking queries = %v", waits)
	}
}

func TestJobWaitProgressOnTerminal(t *testing.T) {
	f := newFakeAPI(t)
	f.addJob("p", "queued", "running", "succeeded")
	env := map[string]string{EnvAddress: f.srv.URL}

	r := runCLI(t, env, "", true, "job", "wait", "p")
	expect(t, r, 0, []string{"Job p succeeded"}, []string{"\r\x1b[K", "Waiting for job p to finish", "p: running, attempt 1 of 25 on node-1, 50% halfway", "no node has plugin echo"})
	if !strings.HasSuffix(r.stderr, "\r\x1b[K") {
		t.Errorf("progress line not cleared at the end: %q", r.stderr)
	}

	r = runCLI(t, env, "", false, "job", "wait", "p")
	if r.stderr != "" {
		t.Errorf("progress drawn although stderr is not a terminal: %q", r.stderr)
	}

	// A failed attempt waiting for its retry: attempt N of M, the error
	// and the next retry time, on a terminal and (one line per attempt)
	// without one.
	f.addJob("r", "queued", "retrying", "retrying", "succeeded")
	r = runCLI(t, env, "", true, "job", "wait", "r")
	expect(t, r, 0, []string{"Job r succeeded"}, []string{"r: scheduled, attempt 1 of 25 failed: boom: exit status 1; next retry "})
	r = runCLI(t, env, "", false, "job", "wait", "r")
	if want := "job r: attempt 1 of 25 failed: boom: exit status 1; next retry "; !strings.HasPrefix(r.stderr, want) || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("retry note without a terminal = %q, want one line starting %q", r.stderr, want)
	}
}

func TestJobStatusAndList(t *testing.T) {
	f := newFakeAPI(t)
	f.addJob("01FAIL", "failed")
	f.addJob("01RUN", "running")

	r := f.cli("job", "status", "01FAIL")
	expect(t, r, 0, []string{"ID ", "= 01FAIL", "State ", "= failed", "Attempt ", "= 3/25", "Error ", "= boom: exit status 1",
		"Payload ", `{"echo":"hi"}`, "Attempts", "#  Node", "1.5s", "failed"}, nil)
	if n := strings.Count(r.stdout, "node-1  "); n < 3 {
		t.Errorf("want one attempt row per attempt (3):\n%s", r.stdout)
	}

	r = f.cli("job", "status", "01RUN")
	expect(t, r, 0, []string{"= running", "= 50% halfway", "so far"}, nil)

	r = f.cli("job", "status", "-json", "01RUN")
	var j api.Job
	if err := json.Unmarshal([]byte(r.stdout), &j); err != nil || j.ID != "01RUN" || j.Progress.Percent != 50 {
		t.Errorf("json status %q: %v", r.stdout, err)
	}

	expect(t, f.cli("job", "status", "nope"), 1, nil, []string{"error: job nope not found"})
	expect(t, f.cli("job", "status"), 1, nil, []string{"error: expected ID, got 0", "usage: corral job status [options] ID (see corral job status -h)"})

	r = f.cli("job", "list", "-state", "failed", "-queue", "default")
	expect(t, r, 0, []string{"ID", "Queue", "State", "01FAIL", "3/25"}, nil)
	if strings.Contains(r.stdout, "01RUN") {
		t.Errorf("-state failed listed a running job:\n%s", r.stdout)
	}
	if q := f.lastRequest(); q != "GET /v1/jobs?limit=100&queue=default&state=failed" {
		t.Errorf("list request = %q", q)
	}
	expect(t, f.cli("job", "list", "-state", "cancelled"), 0, []string{"No jobs"}, nil)
}

func TestJobControlAndLogs(t *testing.T) {
	f := newFakeAPI(t)
	f.addJob("01JOB", "failed")
	f.addJob("01RUN", "running")
	f.addJob("01Q", "queued")

	expect(t, f.cli("job", "retry", "01JOB"), 0, []string{"Job 01JOB is queued again"}, nil)
	expect(t, f.cli("job", "retry", "01RUN"), 1, nil, []string{"error: job 01RUN: job is running, only failed jobs can be retried"})
	expect(t, f.cli("job", "cancel", "01Q"), 0, []string{"Job 01Q cancelled"}, nil)
	expect(t, f.cli("job", "cancel", "01RUN"), 0, []string{"Job 01RUN is running; cancellation requested"}, nil)
	expect(t, f.cli("job", "cancel", "zzz"), 1, nil, []string{"error: job zzz not found"})
	r0 := f.cli("job", "submit", "nobody")
	expect(t, r0, 0, []string{"01JOB"}, []string{`warning: no node has plugin "nobody"`})
	f.addJob("01DONE", "succeeded")
	r := f.cli("job", "cancel", "01DONE")
	expect(t, r, 1, nil, []string{"Job 01DONE already succeeded; there is nothing to cancel."})
	if strings.Count(r.stderr, "\n") != 1 || strings.Contains(r.stderr, "error:") {
		t.Errorf("cancel of a finished job: %q", r.stderr)
	}

	r = f.cli("job", "logs", "01JOB", "-f", "-attempt", "2")
	expect(t, r, 0, nil, nil)
	if r.stdout != "attempt=2 follow=true\nline two\n" {
		t.Errorf("logs stdout = %q", r.stdout)
	}
	r = f.cli("job", "logs", "01JOB")
	if r.stdout != "attempt= follow=\nline two\n" {
		t.Errorf("logs stdout = %q (latest attempt, no follow)", r.stdout)
	}
	expect(t, f.cli("job", "logs", "zzz"), 1, nil, []string{"error: job zzz not found"})
}

func TestClusterCommands(t *testing.T) {
	f := newFakeAPI(t)

	r := f.cli("queue", "list")
	expect(t, r, 0, []string{"Name", "Paused", "Queued", "default", "unlimited", "24h0m0s", "mail", "true"}, nil)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 3 || !strings.Contains(lines[2], " 7") {
		t.Errorf("queue table:\n%s", r.stdout)
	}
	expect(t, f.cli("queue", "pause", "mail"), 0, []string{"Queue mail paused"}, nil)
	expect(t, f.cli("queue", "resume", "jobs"), 0, []string{"Queue jobs resumed"}, nil)
	if !f.paused["mail"] || f.paused["jobs"] {
		t.Errorf("paused = %v", f.paused)
	}
	expect(t, f.cli("queue", "pause"), 1, nil, []string{"expected QUEUE", "(see corral queue pause -h)"})

	r = f.cli("members")
	expect(t, r, 0, []string{"node-1", "10.0.0.1:4782", "alive", "role=server,zone=a", "failed"}, nil)
	if strings.Index(r.stdout, "node-1") > strings.Index(r.stdout, "node-2") {
		t.Errorf("members not sorted by name:\n%s", r.stdout)
	}

	r = f.cli("operator", "raft", "list-peers")
	expect(t, r, 0, []string{"Node", "ID", "Address", "State", "Voter", "id-1", "leader", "follower"}, nil)
	expect(t, f.cli("operator", "raft", "remove-peer", "-id", "id-2"), 0, []string{"Removed peer with id id-2"}, nil)
	expect(t, f.cli("operator", "raft", "remove-peer", "-id", "id-9"), 1, nil, []string{"error: no raft peer with id id-9"})
	expect(t, f.cli("operator", "raft", "remove-peer"), 1, nil, []string{"-id is required"})
	if !reflect.DeepEqual(f.removed, []string{"id-2"}) {
		t.Errorf("removed = %v", f.removed)
	}

	r = f.cli("status")
	expect(t, r, 0, []string{"State ", "= leader", "Term ", "= 3", "Last Index ", "= 42", "Applied Index ", "= 41", "Stats"}, nil)
	stats := r.stdout[strings.Index(r.stdout, "Stats"):]
	if !(strings.Index(stats, "applied_index") < strings.Index(stats, "commit_index") &&
		strings.Index(stats, "commit_index") < strings.Index(stats, "num_peers")) {
		t.Errorf("stats not sorted:\n%s", stats)
	}

	expect(t, f.cli("leave"), 0, []string{"is leaving the cluster"}, nil)
	if !f.left {
		t.Error("leave was not requested")
	}

	r = f.cli("plugin", "list")
	expect(t, r, 0, []string{"echo", "1.0.0", "ready", "1/4", "builtin", "resize", "failed: exec format error", "/etc/corral/plugins/resize"}, nil)

	r = f.cli("members", "-json")
	var ms []api.Member
	if err := json.Unmarshal([]byte(r.stdout), &ms); err != nil || len(ms) != 2 {
		t.Errorf("members -json = %q: %v", r.stdout, err)
	}
}

func TestClientFlagsAndErrors(t *testing.T) {
	f := newFakeAPI(t)
	env := map[string]string{EnvAddress: "http://127.0.0.1:1", EnvToken: "from-env"}

	// -address and -token beat the environment.
	r := runCLI(t, env, "", false, "status", "-address", f.srv.URL, "-token", "from-flag")
	expect(t, r, 0, []string{"= leader"}, nil)
	env[EnvAddress] = f.srv.URL
	expect(t, runCLI(t, env, "", false, "status"), 0, nil, nil)
	if !reflect.DeepEqual(f.tokens, []string{"from-flag", "from-env"}) {
		t.Errorf("tokens sent = %v", f.tokens)
	}

	// Nothing listening: one line that says what to do.
	r = runCLI(t, map[string]string{EnvAddress: "127.0.0.1:1"}, "", false, "job", "status", "x")
	expect(t, r, 1, nil, []string{"error: cannot reach corral at http://127.0.0.1:1: connection refused (is the agent running? set -address or CORRAL_ADDR)"})
	if strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("stderr is not one line: %q", r.stderr)
	}
	r = runCLI(t, map[string]string{}, "", false, "status", "-address", "ftp://x")
	expect(t, r, 1, nil, []string{"error: bad address", "set -address"})

	// Bad flags: one line naming the flag and the form, exit 1.
	oneLineErr := func(r cliResult) {
		t.Helper()
		if strings.Count(r.stderr, "\n") != 1 || strings.Contains(r.stderr, "Usage:") {
			t.Errorf("usage error is not one line: %q", r.stderr)
		}
	}
	r = f.cli("job", "submit", "-bogus", "echo")
	expect(t, r, 1, nil, []string{"error: unknown flag -bogus (see corral job submit -h)"})
	oneLineErr(r)
	r = f.cli("job", "submit", "-delay", "soon", "echo")
	expect(t, r, 1, nil, []string{`-delay="soon": want a duration with a unit, such as 5s`, "(see corral job submit -h)"})
	oneLineErr(r)
	r = f.cli("job", "submit", "-delay", "5", "echo")
	expect(t, r, 1, nil, []string{`-delay="5"`, "did you mean 5s?"})
	oneLineErr(r)
	r = f.cli("job", "submit", "-priority", "high", "echo")
	expect(t, r, 1, nil, []string{`-priority="high": want a whole number`})
	r = f.cli("job", "submit", "-delay", "1m", "-at", "2030-01-01T00:00:00Z", "echo")
	expect(t, r, 1, nil, []string{"-delay and -at", "usage: corral job submit [options] PLUGIN", "(see corral job submit -h)"})
	oneLineErr(r)
	// A payload that looks like JSON must be JSON; the error shows where.
	r = f.cli("job", "submit", "echo", `{"echo": "hello"`)
	expect(t, r, 1, nil, []string{"not valid JSON", `{"echo": "hello" <-- here`})
	oneLineErr(r)
	r = f.cli("job", "submit", "-constraint", "novalue", "echo")
	expect(t, r, 1, nil, []string{"want key=value"})
	r = f.cli("job", "submit")
	expect(t, r, 1, nil, []string{"expected PLUGIN"})
	if len(f.submits) != 0 {
		t.Errorf("bad invocations submitted %d jobs", len(f.submits))
	}

	// Unknown commands and bare groups: help on stderr, exit 1.
	r = f.cli("jobz")
	expect(t, r, 1, nil, []string{"Usage: corral", "job ", "Submit, inspect and control jobs"})
	r = f.cli("job")
	expect(t, r, 1, nil, []string{"Usage: corral job", "submit"})
	r = f.cli()
	expect(t, r, 1, nil, []string{"Usage: corral"})

	// -h prints the command's help on stdout and succeeds.
	r = f.cli("job", "wait", "-h")
	expect(t, r, 0, []string{"Usage: corral job wait", "-timeout", "-address"}, nil)
}

func TestKeygenAndVersion(t *testing.T) {
	a := runCLI(t, nil, "", false, "keygen")
	b := runCLI(t, nil, "", false, "keygen")
	for _, r := range []cliResult{a, b} {
		key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(r.stdout))
		if r.code != 0 || err != nil || len(key) != 32 {
			t.Errorf("keygen = %q (code %d): %v, %d bytes", r.stdout, r.code, err, len(key))
		}
	}
	if a.stdout == b.stdout {
		t.Error("two keygen runs printed the same key")
	}

	r := runCLI(t, nil, "", false, "version")
	if r.code != 0 || r.stdout != "corral "+daemon.Version+"\n" {
		t.Errorf("version = %q (code %d)", r.stdout, r.code)
	}
	r = runCLI(t, nil, "", false, "version", "-json")
	if !strings.Contains(r.stdout, `"version": "`+daemon.Version+`"`) {
		t.Errorf("version -json = %q", r.stdout)
	}
	r = runCLI(t, nil, "", false, "-version")
	if r.code != 0 || r.stdout != "corral "+daemon.Version+"\n" {
		t.Errorf("-version = %q (code %d)", r.stdout, r.code)
	}
}

func TestPluginServeUnknown(t *testing.T) {
	r := runCLI(t, nil, "", false, "plugin", "serve", "no-such-plugin")
	expect(t, r, 1, nil, []string{"error: plugin no-such-plugin:"})
}
