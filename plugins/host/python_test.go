package host

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// pythonSDK is the Python SDK's directory (holding the corral_plugin package).
var pythonSDK, _ = filepath.Abs("../sdk/python")

// debianPython is the interpreter the Python plugin tests use: Debian's, where
// python3-grpcio, python3-protobuf and python3-cryptography install.
const debianPython = "/usr/bin/python3"

// requirePython skips the test unless debianPython can import what the
// Python SDK needs.
func requirePython(t *testing.T) {
	t.Helper()
	out, err := exec.Command(debianPython, "-c", "import grpc, google.protobuf, cryptography").CombinedOutput()
	if err != nil {
		t.Skipf("python3-grpcio missing: %s cannot import grpc, google.protobuf and cryptography (apt-get install python3-grpcio python3-protobuf python3-cryptography): %v: %s",
			debianPython, err, strings.TrimSpace(string(out)))
	}
}

// installPython installs script (relative to the Python SDK) into dir as
// name, through a wrapper that runs it with Debian's python3 and the SDK on
// PYTHONPATH; extra lines go into the wrapper before the exec.
func installPython(t *testing.T, dir, name, script string, extra ...string) {
	t.Helper()
	wrapper := fmt.Sprintf("#!/bin/sh\n%sPYTHONPATH=%q exec %s %q \"$@\"\n",
		strings.Join(append(extra, ""), "\n"), pythonSDK, debianPython, filepath.Join(pythonSDK, script))
	if err := os.WriteFile(filepath.Join(dir, name), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
}

// TestPythonPlugin runs the Python SDK's wordcount example under both
// protocol versions: fingerprint, result, logs, progress, a non-retryable
// failure, cancellation and a timeout.
func TestPythonPlugin(t *testing.T) {
	requirePython(t)
	dir := t.TempDir()
	installPython(t, dir, "wordcount", "examples/wordcount.py")
	// The host offers versions 1 and 2; this one tells the plugin that only
	// 1 is on offer, as an old host would.
	installPython(t, dir, "wordcount1", "examples/wordcount.py", "export PLUGIN_PROTOCOL_VERSIONS=1")
	buf := &syncBuffer{}
	logger := hclog.New(&hclog.LoggerOptions{Name: "plugins", Level: hclog.Debug, Output: buf})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("manager log:\n%s", buf.String())
		}
	})
	m := startManager(t, Config{Dir: dir, Logger: logger})

	for _, name := range []string{"wordcount", "wordcount1"} {
		t.Run(name, func(t *testing.T) {
			s := waitReady(t, m, name)
			if s.Version != "1.0.0" || s.Description != "counts the words of the payload" {
				t.Fatalf("fingerprint: %+v", s)
			}
			inst, err := m.lookup(name)
			if err != nil {
				t.Fatal(err)
			}
			inst.mu.Lock()
			session := inst.proc.sess != nil
			inst.mu.Unlock()
			if want := name == "wordcount"; session != want {
				t.Fatalf("%s speaks protocol version 2 (Session): %v, want %v", name, session, want)
			}
			rec := &recorder{}
			res, err := m.Run(context.Background(), name, RunRequest{JobID: "j1", Attempt: 1, Payload: []byte("b a b")}, rec)
			if err != nil || string(res) != `{"b": 2, "a": 1}` {
				t.Fatalf("Run = %q, %v", res, err)
			}
			if lines := rec.Lines(); len(lines) != 1 || lines[0] != "plugin: counting 3 words" {
				t.Errorf("logs = %q", lines)
			}
			if p := rec.Progresses(); len(p) != 3 || p[0] != 33 || p[2] != 100 {
				t.Errorf("progress = %v", p)
			}

			_, err = m.Run(context.Background(), name, RunRequest{JobID: "j2", Attempt: 1, Payload: []byte("  ")}, nil)
			if je := asJobError(t, err); !je.NonRetryable || !strings.Contains(je.Message, "nothing to count") {
				t.Errorf("empty payload: %+v", je)
			}

			ctx, cancel := context.WithCancel(context.Background())
			rec = &recorder{}
			done := make(chan error, 1)
			go func() {
				_, err := m.Run(ctx, name, RunRequest{JobID: "j3", Attempt: 1, Payload: []byte(`{"text": "a b c d", "delay": 5}`)}, rec)
				done <- err
			}()
			waitFor(t, 10*time.Second, "the slow job to log", func() bool { return len(rec.Lines()) > 0 })
			start := time.Now()
			cancel()
			if err := <-done; !errors.Is(err, ErrCancelled) {
				t.Errorf("cancelled job: %v", err)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("cancel took %s", d)
			}

			start = time.Now()
			_, err = m.Run(context.Background(), name, RunRequest{JobID: "j4", Attempt: 1, Payload: []byte(`{"text": "a b", "delay": 5}`), Timeout: 300 * time.Millisecond}, nil)
			if !errors.Is(err, ErrTimeout) || time.Since(start) > 3*time.Second {
				t.Errorf("timed-out job: %v after %s", err, time.Since(start))
			}
			if s := statusOf(t, m, name); s.Status != StateReady || s.PID == 0 {
				t.Errorf("plugin after the jobs: %+v", s)
			}
		})
	}

	// Close asks each plugin to exit through go-plugin's controller
	// (Shutdown); a plugin without it is killed after 2s, with a warning.
	m.Close()
	if log := buf.String(); strings.Contains(log, "plugin failed to exit gracefully") || strings.Count(log, "plugin exited") < 2 {
		t.Errorf("the Python plugins did not exit on Shutdown:\n%s", log)
	}
}

// TestPythonPluginMisbehaving covers the Python SDK's answers to a job that
// ignores cancellation (the process exits, the host restarts it), a
// rejected config, missing grpc modules, and plain stderr and stdout output after the handshake
// (both reach the agent's log at INFO; the protocol is not broken).
func TestPythonPluginMisbehaving(t *testing.T) {
	requirePython(t)
	dir := t.TempDir()
	installPython(t, dir, "misbehave", "testdata/misbehave.py")
	installPython(t, dir, "badconfig", "testdata/misbehave.py")
	// python3 -S leaves out the site directories, so grpc cannot be imported.
	noGRPC := fmt.Sprintf("#!/bin/sh\nPYTHONPATH=%q exec %s -S %q\n", pythonSDK, debianPython, filepath.Join(pythonSDK, "testdata/misbehave.py"))
	if err := os.WriteFile(filepath.Join(dir, "nogrpc"), []byte(noGRPC), 0o755); err != nil {
		t.Fatal(err)
	}
	buf := &syncBuffer{}
	logger := hclog.New(&hclog.LoggerOptions{Name: "plugins", Level: hclog.Info, Output: buf})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("manager log:\n%s", buf.String())
		}
	})
	m := startManager(t, Config{Dir: dir, Logger: logger, Plugins: map[string]PluginConfig{
		"badconfig": {Config: []byte(`{"colour": "blue"}`)},
	}})
	if s := statusOf(t, m, "badconfig"); s.Status != StateFailed || s.Error != "configure: unknown keys ['colour']" {
		t.Errorf("rejected config: %+v", s)
	}
	if s := statusOf(t, m, "nogrpc"); s.Status != StateFailed || !strings.Contains(s.Error, `stderr: "corral_plugin: No module named`) ||
		!strings.Contains(s.Error, "install python3-grpcio") {
		t.Errorf("plugin without grpcio: %+v", s)
	}
	first := waitReady(t, m, "misbehave")

	for payload, line := range map[string]string{
		"stderr": "[INFO]  plugins.misbehave: plain line from python",
		"print":  "[INFO]  plugins.misbehave: print() after the handshake",
	} {
		if res, err := m.Run(context.Background(), "misbehave", RunRequest{JobID: payload, Attempt: 1, Payload: []byte(payload)}, nil); err != nil || string(res) != "ok" {
			t.Fatalf("%s job: %q, %v", payload, res, err)
		}
		waitFor(t, 10*time.Second, "the line in the agent's log at INFO", func() bool { return strings.Contains(buf.String(), line) })
	}

	ctx, cancel := context.WithCancel(context.Background())
	rec := &recorder{}
	done := make(chan error, 1)
	go func() {
		_, err := m.Run(ctx, "misbehave", RunRequest{JobID: "h1", Attempt: 1, Payload: []byte("hang")}, rec)
		done <- err
	}()
	waitFor(t, 10*time.Second, "the hanging job to start", func() bool { return len(rec.Lines()) > 0 })
	cancel()
	if err := <-done; !errors.Is(err, ErrCancelled) {
		t.Fatalf("cancelled job: %v", err)
	}
	// The job ignores its cancel: 3s later the SDK ends the process (exit
	// 70) and the host restarts the plugin.
	waitFor(t, 20*time.Second, "the plugin to be replaced", func() bool {
		s := statusOf(t, m, "misbehave")
		return s.Status == StateReady && s.PID != first.PID
	})
	if !strings.Contains(buf.String(), "ignored cancellation") {
		t.Errorf("the SDK did not log why it exited")
	}
	if res, err := m.Run(context.Background(), "misbehave", RunRequest{JobID: "after", Attempt: 1}, nil); err != nil || string(res) != "ok" {
		t.Fatalf("job after the restart: %q, %v", res, err)
	}
}
