package main_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// pluginRow is one entry of `corral plugin list -json`.
type pluginRow struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Status  string `json:"status"`
	Error   string `json:"error"`
	PID     int    `json:"pid"`
	Builtin bool   `json:"builtin"`
}

// pluginList runs `corral plugin list -json` and returns the plugins by name.
func pluginList(t *testing.T, addr string) map[string]pluginRow {
	t.Helper()
	stdout, stderr, code := cli(t, addr, "plugin", "list", "-json")
	if code != 0 {
		t.Fatalf("plugin list: exit %d: %s", code, stderr)
	}
	var list struct {
		Plugins []pluginRow `json:"plugins"`
	}
	if err := json.Unmarshal([]byte(stdout), &list); err != nil {
		t.Fatalf("plugin list -json: %v: %s", err, stdout)
	}
	out := map[string]pluginRow{}
	for _, p := range list.Plugins {
		out[p.Name] = p
	}
	return out
}

// pluginDir makes a plugin_dir holding the example plugin `upper` (built
// from plugins/examples/upper), a script that is not a Corral plugin, and a
// file that is not executable.
func pluginDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "upper"), "../../plugins/examples/upper")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the upper example plugin: %v\n%s", err, out)
	}
	script := "#!/bin/sh\necho 'this is not a corral plugin' >&2\nexit 1\n"
	if err := os.WriteFile(filepath.Join(dir, "impostor"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "notes"), []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// startPluginAgent runs a -dev agent with plugin_dir set by a config file.
func startPluginAgent(t *testing.T, dir string) *proc {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "agent.hcl")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("plugin_dir = %q\n", dir)), 0o644); err != nil {
		t.Fatal(err)
	}
	ports := freePorts(t, 3)
	return startAgent(t, devNode(ports), ports[0], append(devArgs(t.TempDir(), ports), "-config", cfg)...)
}

// submitID runs `corral job submit` without -wait and returns the job ID.
func submitID(t *testing.T, addr string, args ...string) string {
	t.Helper()
	stdout, stderr, code := cli(t, addr, append([]string{"job", "submit"}, args...)...)
	id := strings.TrimSpace(stdout)
	if code != 0 || id == "" {
		t.Fatalf("job submit %v: exit %d, stdout %q, stderr %q", args, code, stdout, stderr)
	}
	return id
}

// jobState returns a job's state from `corral job status -json`.
func jobState(t *testing.T, addr, id string) string {
	t.Helper()
	stdout, _, code := cli(t, addr, "job", "status", "-json", id)
	var j struct {
		State string `json:"state"`
	}
	if code != 0 || json.Unmarshal([]byte(stdout), &j) != nil {
		return ""
	}
	return j.State
}

// processGone reports whether pid has exited (a zombie counts as gone: it
// runs nothing and only waits for its new parent to reap it).
func processGone(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	i := bytes.LastIndexByte(stat, ')')
	return i > 0 && i+2 < len(stat) && stat[i+2] == 'Z'
}

// TestPluginsEndToEnd drives a -dev agent with built-in and external
// plugins through the CLI: plugin list (PIDs, broken plugin_dir entries),
// exec, http, echo and upper jobs, exit codes of -wait, and job logs.
func TestPluginsEndToEnd(t *testing.T) {
	agent := startPluginAgent(t, pluginDir(t))
	addr := agent.httpURL

	plugins := pluginList(t, addr)
	for _, name := range []string{"echo", "exec", "http", "upper"} {
		if p := plugins[name]; p.Status != "ready" || p.PID <= 0 {
			t.Fatalf("plugin %s: %+v; want ready with a pid", name, p)
		}
	}
	if p := plugins["upper"]; p.Version != "1.0.0" || p.Builtin {
		t.Fatalf("external plugin upper not fingerprinted: %+v", p)
	}
	if p := plugins["impostor"]; p.Status != "failed" || !strings.Contains(p.Error, "not a Corral plugin") {
		t.Fatalf("wrong-handshake binary: %+v", p)
	}
	if p := plugins["notes"]; p.Status != "skipped" || !strings.Contains(p.Error, "not executable") {
		t.Fatalf("non-executable file: %+v", p)
	}
	table, _, _ := cli(t, addr, "plugin", "list")
	for _, want := range []string{"PID", "impostor", "failed: plugin exited before the handshake", "skipped: not executable"} {
		if !strings.Contains(table, want) {
			t.Fatalf("plugin list does not show %q:\n%s", want, table)
		}
	}

	t.Run("external plugin runs jobs", func(t *testing.T) {
		stdout, stderr, code := cli(t, addr, "job", "submit", "-wait", "upper", "hello plugins")
		if code != 0 || !strings.Contains(stdout, "HELLO PLUGINS") {
			t.Fatalf("upper: exit %d, stdout %q, stderr %q", code, stdout, stderr)
		}
	})

	t.Run("exec output becomes the job log", func(t *testing.T) {
		id := submitID(t, addr, "exec", `{"command":["sh","-c","echo to-stdout; echo to-stderr >&2"]}`)
		if _, _, code := cli(t, addr, "job", "wait", id, "-timeout", "20s"); code != 0 {
			t.Fatalf("exec job: exit %d", code)
		}
		stdout, stderr, code := cli(t, addr, "job", "logs", id)
		if code != 0 || !strings.Contains(stdout, "to-stdout\n") || !strings.Contains(stdout, "to-stderr\n") {
			t.Fatalf("job logs: exit %d, stdout %q, stderr %q", code, stdout, stderr)
		}
		_, _, code = cli(t, addr, "job", "submit", "-wait", "-max-attempts", "1", "exec", `{"command":["sh","-c","exit 7"]}`)
		if code != 2 {
			t.Fatalf("exec job exiting 7: exit %d, want 2 (failed)", code)
		}
	})

	t.Run("http", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/broken" {
				http.Error(w, "upstream broke", http.StatusInternalServerError)
				return
			}
			fmt.Fprintf(w, "pong to %s", r.Method)
		}))
		defer srv.Close()
		stdout, stderr, code := cli(t, addr, "job", "submit", "-wait", "http", fmt.Sprintf(`{"method":"POST","url":%q}`, srv.URL+"/ping"))
		if code != 0 || !strings.Contains(stdout, "pong to POST") {
			t.Fatalf("http job: exit %d, stdout %q, stderr %q", code, stdout, stderr)
		}
		stdout, stderr, code = cli(t, addr, "job", "submit", "-wait", "-max-attempts", "1", "http", fmt.Sprintf(`{"url":%q}`, srv.URL+"/broken"))
		if code != 2 || !strings.Contains(stdout+stderr, "500") {
			t.Fatalf("http job against a 500: exit %d, stdout %q, stderr %q; want 2 naming the status", code, stdout, stderr)
		}
	})

	t.Run("wait exit codes", func(t *testing.T) {
		stdout, _, code := cli(t, addr, "job", "submit", "-wait", "echo", `{"echo":"fine"}`)
		if code != 0 || !strings.Contains(stdout, "fine") {
			t.Fatalf("succeeded echo: exit %d, stdout %q", code, stdout)
		}
		if _, _, code = cli(t, addr, "job", "submit", "-wait", "-max-attempts", "1", "echo", `{"fail_attempts":1}`); code != 2 {
			t.Fatalf("failed echo: exit %d, want 2", code)
		}
		if _, _, code = cli(t, addr, "job", "submit", "-wait", "-wait-timeout", "500ms", "echo", `{"sleep":"5s"}`); code != 4 {
			t.Fatalf("-wait-timeout: exit %d, want 4", code)
		}
		id := submitID(t, addr, "echo", `{"sleep":"30s"}`)
		done := make(chan int, 1)
		go func() {
			cmd := exec.Command(corralBin, "job", "wait", id, "-timeout", "30s")
			cmd.Env = append(os.Environ(), "CORRAL_ADDR="+addr)
			_ = cmd.Run()
			done <- cmd.ProcessState.ExitCode()
		}()
		eventually(t, 10*time.Second, "the echo job to run", func() bool { return jobState(t, addr, id) == "running" })
		if _, stderr, code := cli(t, addr, "job", "cancel", id); code != 0 {
			t.Fatalf("cancel: exit %d: %s", code, stderr)
		}
		select {
		case code := <-done:
			if code != 3 {
				t.Fatalf("job wait on a cancelled running job: exit %d, want 3", code)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("job wait did not return after the cancel")
		}
	})

	t.Run("logs follow a running job", func(t *testing.T) {
		id := submitID(t, addr, "exec", `{"command":["sh","-c","for i in 1 2 3 4; do echo tick $i; sleep 0.5; done"]}`)
		eventually(t, 10*time.Second, "the exec job to start", func() bool {
			_, _, code := cli(t, addr, "job", "logs", id)
			return code == 0
		})
		cmd := exec.Command(corralBin, "job", "logs", "-f", id)
		cmd.Env = append(os.Environ(), "CORRAL_ADDR="+addr)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill() })
		sc := bufio.NewScanner(out)
		var lines []string
		for sc.Scan() {
			lines = append(lines, sc.Text())
			if state := jobState(t, addr, id); len(lines) == 1 && state != "running" {
				t.Fatalf("first followed line %q came after the job ended (%s)", lines[0], state)
			}
		}
		if err := cmd.Wait(); err != nil {
			t.Fatalf("job logs -f: %v", err)
		}
		if got := strings.Join(lines, "|"); got != "tick 1|tick 2|tick 3|tick 4" {
			t.Fatalf("job logs -f printed %q", got)
		}
	})
}

// TestAgentSIGKILLLeavesNoPlugins kills the agent with SIGKILL and checks
// that every plugin process (built-in and external) exits on its own.
func TestAgentSIGKILLLeavesNoPlugins(t *testing.T) {
	agent := startPluginAgent(t, pluginDir(t))
	var pids []int
	for name, p := range pluginList(t, agent.httpURL) {
		if p.Status == "ready" {
			if p.PID <= 0 {
				t.Fatalf("plugin %s is ready without a pid", name)
			}
			pids = append(pids, p.PID)
		}
	}
	if len(pids) != 4 {
		t.Fatalf("want 4 running plugins (echo, exec, http, upper), got pids %v", pids)
	}
	t.Cleanup(func() {
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	// A running job must not keep its plugin alive either.
	id := submitID(t, agent.httpURL, "echo", `{"sleep":"1m"}`)
	eventually(t, 10*time.Second, "the echo job to run", func() bool { return jobState(t, agent.httpURL, id) == "running" })

	agent.signal(syscall.SIGKILL) // the agent only, not its process group
	agent.waitExit(10 * time.Second)
	eventually(t, 10*time.Second, fmt.Sprintf("plugin processes %v to exit after the agent died", pids), func() bool {
		for _, pid := range pids {
			if !processGone(pid) {
				return false
			}
		}
		return true
	})
}
