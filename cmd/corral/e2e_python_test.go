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

// debianPython is the interpreter for Python plugins in tests: Debian's,
// where python3-grpcio, python3-protobuf and python3-cryptography install.
const debianPython = "/usr/bin/python3"

// requirePythonSDK skips the test unless debianPython can import what the
// Python SDK (plugins/sdk/python) needs.
func requirePythonSDK(t *testing.T) {
	t.Helper()
	out, err := exec.Command(debianPython, "-c", "import grpc, google.protobuf, cryptography").CombinedOutput()
	if err != nil {
		t.Skipf("python3-grpcio missing: %s cannot import grpc, google.protobuf and cryptography (apt-get install python3-grpcio python3-protobuf python3-cryptography): %v: %s",
			debianPython, err, strings.TrimSpace(string(out)))
	}
}

// pythonPluginDir makes a plugin_dir holding the Python SDK's wordcount
// example as `wordcount`: a wrapper that runs it with Debian's python3 and
// the SDK on PYTHONPATH, as a user would install it. Three more wrappers
// break the handshake on purpose: `pystdout` writes to stdout first,
// `pycookie` gets another magic cookie, `pynotls` is not asked for mTLS
// (so it serves plain gRPC, which Corral refuses).
func pythonPluginDir(t *testing.T) string {
	t.Helper()
	sdk, err := filepath.Abs("../../plugins/sdk/python")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, before := range map[string]string{
		"wordcount": "",
		"pystdout":  "echo hello from a script",
		"pycookie":  "CORRAL_PLUGIN=another-app; export CORRAL_PLUGIN",
		"pynotls":   "unset PLUGIN_CLIENT_CERT",
	} {
		wrapper := fmt.Sprintf("#!/bin/sh\n%s\nPYTHONPATH=%q exec %s %q \"$@\"\n", before, sdk, debianPython, filepath.Join(sdk, "examples", "wordcount.py"))
		if err := os.WriteFile(filepath.Join(dir, name), []byte(wrapper), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// pyJob is the part of `corral job status -json` these tests read.
type pyJob struct {
	State    string          `json:"state"`
	Attempt  int             `json:"attempt"`
	Error    string          `json:"error"`
	Result   json.RawMessage `json:"result"`
	Progress *struct {
		Percent float64 `json:"percent"`
		Message string  `json:"message"`
	} `json:"progress"`
	Attempts []struct {
		Outcome string `json:"outcome"`
		Error   string `json:"error"`
	} `json:"attempts"`
}

// pyJobStatus returns a job from `corral job status -json`.
func pyJobStatus(t *testing.T, addr, id string) pyJob {
	t.Helper()
	stdout, stderr, code := cli(t, addr, "job", "status", "-json", id)
	var j pyJob
	if code != 0 {
		t.Fatalf("job status %s: exit %d: %s", id, code, stderr)
	}
	if err := json.Unmarshal([]byte(stdout), &j); err != nil {
		t.Fatalf("job status -json: %v: %s", err, stdout)
	}
	return j
}

// TestPythonPluginEndToEnd runs the Python SDK's wordcount example through
// a real agent: fingerprint, result, job log, progress, a non-retryable
// failure, cancellation, and a crash of the plugin process followed by its
// restart and a retry of the job.
func TestPythonPluginEndToEnd(t *testing.T) {
	requirePythonSDK(t)
	// The plugins make their socket directories under TMPDIR; the SIGKILLs
	// below (and the agent's at cleanup) leave them behind, so keep them in
	// the test's own temporary directory.
	t.Setenv("TMPDIR", t.TempDir())
	agent := startPluginAgent(t, pythonPluginDir(t))
	addr := agent.httpURL

	eventually(t, 20*time.Second, "wordcount ready", func() bool { return pluginList(t, addr)["wordcount"].Status == "ready" })
	first := pluginList(t, addr)["wordcount"]
	if first.Version != "1.0.0" || first.PID <= 0 || first.Builtin {
		t.Fatalf("wordcount not fingerprinted: %+v", first)
	}

	t.Run("failed handshakes name their cause", func(t *testing.T) {
		var plugins map[string]pluginRow
		eventually(t, 20*time.Second, "the broken plugins to be started", func() bool {
			plugins = pluginList(t, addr)
			return plugins["pystdout"].Status != "starting" && plugins["pycookie"].Status != "starting" && plugins["pynotls"].Status != "starting"
		})
		for name, want := range map[string]string{
			"pystdout": `plugin wrote "hello from a script" to stdout`,
			"pycookie": "wrong magic cookie",
			"pynotls":  "plugin does not speak mTLS",
		} {
			if p := plugins[name]; p.Status != "failed" || !strings.Contains(p.Error, want) {
				t.Errorf("%s: %+v; want failed with %q", name, p, want)
			}
		}
	})

	t.Run("result and log", func(t *testing.T) {
		id := submitID(t, addr, "wordcount", "the cat and the hat")
		if stdout, stderr, code := cli(t, addr, "job", "wait", id, "-timeout", "30s"); code != 0 {
			t.Fatalf("job wait: exit %d: %s %s", code, stdout, stderr)
		}
		var counts map[string]int
		j := pyJobStatus(t, addr, id)
		if err := json.Unmarshal(j.Result, &counts); err != nil || counts["the"] != 2 || counts["cat"] != 1 || len(counts) != 4 {
			t.Fatalf("result %s (%v)", j.Result, err)
		}
		stdout, _, code := cli(t, addr, "job", "logs", id)
		if code != 0 || !strings.Contains(stdout, "counting 5 words") {
			t.Fatalf("job logs: exit %d: %q", code, stdout)
		}
	})

	t.Run("non-retryable failure", func(t *testing.T) {
		stdout, stderr, code := cli(t, addr, "job", "submit", "-wait", "wordcount", `{"text": ""}`)
		if code != 2 {
			t.Fatalf("empty text: exit %d, want 2 (failed): %s %s", code, stdout, stderr)
		}
		id := strings.Fields(stdout)[0]
		if j := pyJobStatus(t, addr, id); j.State != "failed" || j.Attempt != 1 || !strings.Contains(j.Error, "nothing to count") {
			t.Fatalf("want failed after one attempt with the plugin's message, got %+v", j)
		}
	})

	t.Run("progress and cancel", func(t *testing.T) {
		id := submitID(t, addr, "wordcount", `{"text": "a b c d e f g h i j", "delay": 0.3}`)
		var j pyJob
		eventually(t, 20*time.Second, "progress of the running job", func() bool {
			j = pyJobStatus(t, addr, id)
			return j.State == "running" && j.Progress != nil && j.Progress.Percent >= 10
		})
		if !strings.HasSuffix(j.Progress.Message, "/10 words") {
			t.Fatalf("progress %+v", j.Progress)
		}
		if _, stderr, code := cli(t, addr, "job", "cancel", id); code != 0 {
			t.Fatalf("cancel: exit %d: %s", code, stderr)
		}
		eventually(t, 20*time.Second, "the job to end cancelled", func() bool { return pyJobStatus(t, addr, id).State == "cancelled" })
		// The job returned on its own: the plugin process was not replaced.
		if p := pluginList(t, addr)["wordcount"]; p.Status != "ready" || p.PID != first.PID {
			t.Fatalf("plugin after the cancel: %+v, want ready with pid %d", p, first.PID)
		}
	})

	t.Run("crash, restart and retry", func(t *testing.T) {
		id := submitID(t, addr, "-max-attempts", "1", "wordcount", `{"text": "a b c d e f g h i j", "delay": 0.3}`)
		eventually(t, 20*time.Second, "the job to run", func() bool {
			j := pyJobStatus(t, addr, id)
			return j.State == "running" && j.Progress != nil
		})
		if err := syscall.Kill(first.PID, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		eventually(t, 20*time.Second, "the attempt to fail", func() bool { return pyJobStatus(t, addr, id).State == "failed" })
		if j := pyJobStatus(t, addr, id); !strings.Contains(j.Error, "crashed") {
			t.Fatalf("crashed attempt: %+v", j)
		}
		var p pluginRow
		eventually(t, 30*time.Second, "the plugin to be restarted", func() bool {
			p = pluginList(t, addr)["wordcount"]
			return p.Status == "ready" && p.PID > 0 && p.PID != first.PID
		})
		if _, stderr, code := cli(t, addr, "job", "retry", id); code != 0 {
			t.Fatalf("job retry: exit %d: %s", code, stderr)
		}
		if stdout, stderr, code := cli(t, addr, "job", "wait", id, "-timeout", "30s"); code != 0 {
			t.Fatalf("retried job: exit %d: %s %s", code, stdout, stderr)
		}
		if j := pyJobStatus(t, addr, id); j.State != "succeeded" || j.Attempt != 2 {
			t.Fatalf("retried job: %+v", j)
		}
	})
}
