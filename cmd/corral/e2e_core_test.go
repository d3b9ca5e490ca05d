package main_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// devArgs are the flags of a -dev agent on the given data dir and ports.
// devArgs runs a dev agent on ports; its node name is devNode(ports), so
// the harness can tell it from any other agent that answers on the port.
func devArgs(dir string, ports []int) []string {
	return []string{"-dev", "-node", devNode(ports), "-data-dir", dir,
		"-http-port", strconv.Itoa(ports[0]), "-raft-port", strconv.Itoa(ports[1]), "-serf-port", strconv.Itoa(ports[2])}
}

func devNode(ports []int) string { return "dev-" + strconv.Itoa(ports[0]) }

// TestAcknowledgedSubmitsSurviveSIGKILL submits jobs from many clients,
// SIGKILLs the agent mid-load, restarts it on the same data dir and checks
// that every job the API acknowledged is still there.
func TestAcknowledgedSubmitsSurviveSIGKILL(t *testing.T) {
	dir := t.TempDir()
	ports := freePorts(t, 3)
	agent := startAgent(t, devNode(ports), ports[0], devArgs(dir, ports)...)

	var (
		mu    sync.Mutex
		acked []string
		wg    sync.WaitGroup
		stop  = make(chan struct{})
	)
	client := &http.Client{Timeout: 5 * time.Second}
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				// A plugin no node has keeps the jobs queued.
				body := fmt.Sprintf(`{"plugin":"durability-probe","payload":{"n":%d}}`, i)
				resp, err := client.Post(agent.httpURL+"/v1/jobs", "application/json", strings.NewReader(body))
				if err != nil {
					return // the agent died
				}
				var out struct{ ID string }
				err = json.NewDecoder(resp.Body).Decode(&out)
				resp.Body.Close()
				if err == nil && resp.StatusCode == http.StatusOK && out.ID != "" {
					mu.Lock()
					acked = append(acked, out.ID)
					mu.Unlock()
				}
			}
		}()
	}
	eventually(t, 30*time.Second, "300 acknowledged submits", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) >= 300
	})
	agent.kill() // SIGKILL while the submitters are still running
	close(stop)
	wg.Wait()
	mu.Lock()
	ids := append([]string(nil), acked...)
	mu.Unlock()

	agent.start()
	for _, id := range ids {
		resp, err := http.Get(agent.httpURL + "/v1/jobs/" + id)
		if err != nil {
			t.Fatalf("get %s: %v", id, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("acknowledged job %s lost after SIGKILL (status %d); %d jobs were acknowledged", id, resp.StatusCode, len(ids))
		}
	}
	stdout, stderr, code := cli(t, agent.httpURL, "job", "status", ids[len(ids)-1])
	if code != 0 || !strings.Contains(stdout, ids[len(ids)-1]) {
		t.Fatalf("job status after restart: code %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	t.Logf("%d acknowledged jobs all survived SIGKILL + restart", len(ids))
}

// TestBadInputIsRejectedCleanly checks the one-line errors and status codes
// of bad requests, and that they change nothing.
func TestBadInputIsRejectedCleanly(t *testing.T) {
	ports := freePorts(t, 3)
	agent := startAgent(t, devNode(ports), ports[0], devArgs(t.TempDir(), ports)...)

	post := func(body []byte) (int, string) {
		resp, err := http.Post(agent.httpURL+"/v1/jobs", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var e struct{ Error string }
		if err := json.Unmarshal(b, &e); err != nil || e.Error == "" {
			t.Fatalf("status %d: body is not {\"error\": ...}: %s", resp.StatusCode, b)
		}
		if strings.Contains(e.Error, "\n") {
			t.Fatalf("error is not one line: %q", e.Error)
		}
		return resp.StatusCode, e.Error
	}
	if code, msg := post([]byte(`{"plugin": "echo", `)); code != http.StatusBadRequest || !strings.Contains(msg, "malformed JSON") {
		t.Fatalf("malformed JSON: %d %q", code, msg)
	}
	big := fmt.Sprintf(`{"plugin":"echo","payload":%q}`, strings.Repeat("x", 2<<20))
	if code, msg := post([]byte(big)); code != http.StatusRequestEntityTooLarge || !strings.Contains(msg, "limit") {
		t.Fatalf("oversized payload: %d %q", code, msg)
	}
	if code, msg := post([]byte(`{"payload": {}}`)); code != http.StatusBadRequest || !strings.Contains(msg, "plugin") {
		t.Fatalf("missing plugin: %d %q", code, msg)
	}
	if code, msg := post([]byte(`{"jobs": [{"plugin":"echo"}, {"plugin":"echo","priority":"high"}]}`)); code != http.StatusBadRequest {
		t.Fatalf("bad batch: %d %q", code, msg)
	}
	// Nothing above created a job.
	stdout, _, code := cli(t, agent.httpURL, "job", "list", "-json")
	var list struct{ Jobs []json.RawMessage }
	if code != 0 || json.Unmarshal([]byte(stdout), &list) != nil || len(list.Jobs) != 0 {
		t.Fatalf("bad input changed state: code %d, list %s", code, stdout)
	}

	_, stderr, code := cli(t, agent.httpURL, "job", "status", "01JNOSUCHJOB0000000000000")
	if code != 1 || !strings.Contains(stderr, "not found") || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
		t.Fatalf("unknown job: code %d, stderr %q", code, stderr)
	}
	_, stderr, code = cli(t, agent.httpURL, "job", "submit", "-priority", "high", "echo")
	if code != 1 || !strings.Contains(stderr, `-priority="high": want a whole number (see corral job submit -h)`) || strings.Count(stderr, "\n") != 1 {
		t.Fatalf("bad flag: code %d, stderr %q; want one line naming the flag and its form", code, stderr)
	}
}

// TestDevAgentRunsJobsEndToEnd drives the dev agent with the CLI only.
func TestDevAgentRunsJobsEndToEnd(t *testing.T) {
	ports := freePorts(t, 3)
	agent := startAgent(t, devNode(ports), ports[0], devArgs(t.TempDir(), ports)...)

	stdout, stderr, code := cli(t, agent.httpURL, "job", "submit", "-wait", "echo", `{"echo":"hello"}`)
	if code != 0 || !strings.Contains(stdout, "hello") {
		t.Fatalf("submit -wait echo: code %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	_, _, code = cli(t, agent.httpURL, "job", "submit", "-wait", "-max-attempts", "1", "echo", `{"fail_attempts": 5}`)
	if code != 2 {
		t.Fatalf("failing job: exit %d, want 2", code)
	}
	stdout, _, code = cli(t, agent.httpURL, "job", "submit", "-delay", "1h", "echo", `{}`)
	id := strings.TrimSpace(stdout)
	if code != 0 || id == "" {
		t.Fatalf("delayed submit: %d %q", code, stdout)
	}
	if _, _, code = cli(t, agent.httpURL, "job", "cancel", id); code != 0 {
		t.Fatalf("cancel: exit %d", code)
	}
	if _, _, code = cli(t, agent.httpURL, "job", "wait", id, "-timeout", "10s"); code != 3 {
		t.Fatalf("wait on cancelled job: exit %d, want 3", code)
	}
	if _, _, code = cli(t, agent.httpURL, "job", "retry", id); code != 0 {
		t.Fatalf("retry cancelled job: exit %d", code)
	}
	stdout, _, _ = cli(t, agent.httpURL, "queue", "list")
	if !strings.Contains(stdout, "default") {
		t.Fatalf("queue list: %q", stdout)
	}
	resp, err := http.Get(agent.httpURL + "/v1/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metrics), "corral_raft_apply") {
		t.Fatalf("GET /v1/metrics has no raft metrics:\n%.500s", metrics)
	}
	agent.signal(syscall.SIGINT)
	if code := agent.waitExit(20 * time.Second); code != 0 {
		t.Fatalf("agent exit code after SIGINT: %d", code)
	}
}

// TestAgentRejectsBadConfig: a bad key or value stops the agent with the
// file, line and key, on one line, and exit code 1.
func TestAgentRejectsBadConfig(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name, body, want string
	}{
		{"unknown-key.hcl", "data_dir = \"" + dir + "\"\nserver {\n  bootstrap_expekt = 3\n}\n", "unknown-key.hcl:3"},
		{"bad-duration.hcl", "data_dir = \"" + dir + "\"\nserver {\n  dead_server_cleanup_after = \"soon\"\n}\n", "bad-duration.hcl:3"},
		{"bad-value.hcl", "data_dir = \"" + dir + "\"\nserver {\n  max_voters = 0\n}\n", "max_voters"},
	}
	for _, tc := range cases {
		path := filepath.Join(dir, tc.name)
		if err := os.WriteFile(path, []byte(tc.body), 0o600); err != nil {
			t.Fatal(err)
		}
		_, stderr, code := cli(t, "", "agent", "-config", path)
		if code != 1 || !strings.Contains(stderr, tc.want) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("%s: exit %d, stderr %q; want exit 1 and one line mentioning %q", tc.name, code, stderr, tc.want)
		}
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".hcl") {
			t.Errorf("a rejected config left %s in the data dir", e.Name())
		}
	}
}
