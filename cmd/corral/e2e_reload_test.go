package main_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// jobAttempt returns a job's state and attempt from `corral job status -json`.
func jobAttempt(t *testing.T, addr, id string) (string, int) {
	t.Helper()
	stdout, _, code := cli(t, addr, "job", "status", "-json", id)
	var j struct {
		State   string `json:"state"`
		Attempt int    `json:"attempt"`
	}
	if code != 0 || json.Unmarshal([]byte(stdout), &j) != nil {
		return "", 0
	}
	return j.State, j.Attempt
}

// TestReloadOnSIGHUP runs a -dev agent, starts a long echo job, then drops
// a plugin binary into plugin_dir and changes echo's concurrency, the log
// level and a tag in the config file, and sends SIGHUP: the new plugin
// runs jobs, the long job finishes normally on its first attempt, echo is
// replaced (new process, new concurrency) only after that, the new log level
// is in force, and the tag change is named as needing a restart. A second
// reload through `corral reload` with nothing changed changes nothing.
func TestReloadOnSIGHUP(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(t.TempDir(), "agent.hcl")
	write := func(body string) {
		t.Helper()
		if err := os.WriteFile(cfg, []byte(fmt.Sprintf("plugin_dir = %q\n%s", dir, body)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("log_level = \"info\"\n")
	// The plugin to install later is built elsewhere first.
	staging := filepath.Join(t.TempDir(), "upper")
	if out, err := exec.Command("go", "build", "-o", staging, "../../plugins/examples/upper").CombinedOutput(); err != nil {
		t.Fatalf("build the upper example plugin: %v\n%s", err, out)
	}
	ports := freePorts(t, 3)
	agent := startAgent(t, devNode(ports), ports[0], append(devArgs(t.TempDir(), ports), "-config", cfg)...)
	addr := agent.httpURL

	before := pluginList(t, addr)
	if _, ok := before["upper"]; ok {
		t.Fatal("upper is there before it was installed")
	}
	echoPID := before["echo"].PID
	long := submitID(t, addr, "echo", `{"echo":"long","sleep":"10s"}`)
	eventually(t, 20*time.Second, "the long job runs", func() bool {
		st, _ := jobAttempt(t, addr, long)
		return st == "running"
	})

	// Install it the way an operator would: move it into plugin_dir.
	if err := os.Rename(staging, filepath.Join(dir, "upper")); err != nil {
		t.Fatal(err)
	}
	write("log_level = \"debug\"\ntags { zone = \"b\" }\nplugin \"echo\" {\n  concurrency = 2\n}\n")
	agent.signal(syscall.SIGHUP)

	eventually(t, 10*time.Second, "echo draining after SIGHUP", func() bool {
		return pluginList(t, addr)["echo"].Status == "draining"
	})
	if p := pluginList(t, addr)["echo"]; p.PID != echoPID {
		t.Fatalf("echo restarted while its job runs: %+v, want pid %d", p, echoPID)
	}
	if st, _ := jobAttempt(t, addr, long); st != "running" {
		t.Fatalf("the long job is %s right after the reload, want still running", st)
	}
	eventually(t, 30*time.Second, "upper is ready after SIGHUP", func() bool {
		return pluginList(t, addr)["upper"].Status == "ready"
	})
	stdout, stderr, code := cli(t, addr, "job", "submit", "-wait", "upper", `{"text":"reloaded"}`)
	if code != 0 {
		t.Fatalf("upper job after reload: exit %d: %s %s", code, stdout, stderr)
	}
	eventually(t, 30*time.Second, "the long job ends", func() bool {
		st, _ := jobAttempt(t, addr, long)
		return st != "running" && st != "queued"
	})
	if st, attempt := jobAttempt(t, addr, long); st != "succeeded" || attempt != 1 {
		t.Fatalf("long job: %s after %d attempts, want succeeded on attempt 1", st, attempt)
	}
	eventually(t, 30*time.Second, "echo replaced once idle", func() bool {
		p := pluginList(t, addr)["echo"]
		return p.Status == "ready" && p.PID != echoPID
	})
	var self struct {
		Plugins []struct {
			Name        string `json:"name"`
			Concurrency int    `json:"concurrency"`
		} `json:"plugins"`
	}
	out, _, _ := cli(t, addr, "plugin", "list", "-json")
	_ = json.Unmarshal([]byte(out), &self)
	for _, p := range self.Plugins {
		if p.Name == "echo" && p.Concurrency != 2 {
			t.Fatalf("echo concurrency %d after reload, want 2", p.Concurrency)
		}
	}
	if _, stderr, code := cli(t, addr, "job", "submit", "-wait", "echo", `{"echo":"after"}`); code != 0 {
		t.Fatalf("echo job after its replacement: exit %d: %s", code, stderr)
	}
	logs := agent.log.String()
	for _, want := range []string{"reload: log level changed", "take effect only after an agent restart: options=tags", "[DEBUG]"} {
		if !strings.Contains(logs, want) {
			t.Errorf("agent log lacks %q", want)
		}
	}

	stdout, stderr, code = cli(t, addr, "reload", "-json")
	if code != 0 {
		t.Fatalf("corral reload: exit %d: %s", code, stderr)
	}
	var res struct {
		Started, Restarted, Removed []string
		NeedRestart                 []string `json:"need_restart"`
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("corral reload -json: %v: %s", err, stdout)
	}
	if len(res.Started)+len(res.Restarted)+len(res.Removed) != 0 {
		t.Fatalf("a reload with nothing changed changed plugins: %+v", res)
	}
}
