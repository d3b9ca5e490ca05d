package host

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestStartFingerprintsAndListsPlugins(t *testing.T) {
	dir := t.TempDir()
	upperPath := install(t, dir, "upper", "upper")
	install(t, dir, "upper", "tampered")
	install(t, dir, "testplugin", "badcookie")
	install(t, dir, "testplugin", "stdout")
	install(t, dir, "testplugin", "badversion")
	install(t, dir, "testplugin", "notls")
	if err := os.WriteFile(filepath.Join(dir, "README.txt"), []byte("not a plugin"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "noexec"), []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(upperPath)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	wrong := sha256.Sum256([]byte("something else"))

	m := startManager(t, Config{
		Dir:      dir,
		Builtins: []string{"echo", "exec", "http"},
		SelfExe:  selfExe(),
		Plugins: map[string]PluginConfig{
			"upper":    {Concurrency: 2, Checksum: hex.EncodeToString(sum[:])},
			"tampered": {Checksum: hex.EncodeToString(wrong[:])},
			"noexec":   {},
			"missing":  {},
		},
	})

	got := map[string]Status{}
	for _, s := range m.Plugins() {
		got[s.Name] = s
		if strings.Contains(s.Error, "\n") {
			t.Errorf("%s: error is not one line: %q", s.Name, s.Error)
		}
	}
	if s := got["README.txt"]; s.Status != StateSkipped || !strings.Contains(s.Error, "not executable") {
		t.Errorf("non-executable file: want skipped with \"not executable\", got %+v", s)
	}

	up := got["upper"]
	if up.Status != StateReady || up.Version != "1.0.0" || up.Description != "upper-cases the payload" ||
		up.Path != upperPath || up.Builtin || up.Concurrency != 2 || up.PID == 0 {
		t.Errorf("upper: %+v", up)
	}
	for name, conc := range map[string]int{"echo": DefaultConcurrency, "exec": DefaultExecConcurrency, "http": DefaultConcurrency} {
		s := got[name]
		if s.Status != StateReady || !s.Builtin || s.Concurrency != conc || s.Version == "" {
			t.Errorf("%s: %+v", name, s)
		}
	}

	wantFailed := map[string]string{
		"tampered":   "checksum mismatch",
		"badcookie":  "wrong magic cookie",
		"stdout":     `plugin wrote "hello from stdout" to stdout`,
		"badversion": "incompatible plugin protocol version",
		"notls":      "plugin does not speak mTLS",
		"noexec":     "not executable",
		"missing":    "not found",
	}
	for name, want := range wantFailed {
		s := got[name]
		if s.Status != StateFailed || !strings.Contains(s.Error, want) {
			t.Errorf("%s: want failed with %q, got %s: %q", name, want, s.Status, s.Error)
		}
	}
	if !strings.Contains(got["badcookie"].Error, "This binary is a plugin") {
		t.Errorf("badcookie error does not quote the plugin's stderr: %q", got["badcookie"].Error)
	}

	free := m.Free()
	if len(free) != 4 || free["upper"] != 2 || free["exec"] != DefaultExecConcurrency {
		t.Errorf("Free() = %v", free)
	}

	rec := &recorder{}
	res, err := m.Run(context.Background(), "upper", RunRequest{JobID: "j1", Attempt: 1, Payload: []byte("hello")}, rec)
	if err != nil || string(res) != "HELLO" {
		t.Fatalf("Run(upper) = %q, %v", res, err)
	}
	if lines := rec.Lines(); len(lines) != 1 || lines[0] != "plugin: upper-casing 5 bytes" {
		t.Errorf("logs = %q", lines)
	}
	if p := rec.Progresses(); len(p) != 1 || p[0] != 50 {
		t.Errorf("progress = %v", p)
	}

	_, err = m.Run(context.Background(), "stdout", RunRequest{JobID: "j2", Attempt: 1}, nil)
	if !errors.Is(err, ErrNotReady) || !strings.Contains(err.Error(), "failed") {
		t.Errorf("Run on a failed plugin: %v", err)
	}
	_, err = m.Run(context.Background(), "nope", RunRequest{JobID: "j3", Attempt: 1}, nil)
	if !errors.Is(err, ErrUnknownPlugin) {
		t.Errorf("Run on an unknown plugin: %v", err)
	}
}

func TestConcurrencyLimit(t *testing.T) {
	const conc, calls = 3, 10
	m := startManager(t, Config{
		Builtins: []string{"echo"},
		SelfExe:  selfExe(),
		Plugins:  map[string]PluginConfig{"echo": {Concurrency: conc}},
	})

	var (
		wg              sync.WaitGroup
		mu              sync.Mutex
		ok, noSlot      int
		other           []error
		startLine       = make(chan struct{})
		payload         = []byte(`{"echo": "x", "sleep": "1s"}`)
		runningObserved = make(chan struct{})
	)
	for n := range calls {
		wg.Go(func() {
			<-startLine
			_, err := m.Run(context.Background(), "echo", RunRequest{JobID: "c" + string(rune('a'+n)), Attempt: 1, Payload: payload}, nil)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, ErrNoSlot):
				noSlot++
			default:
				other = append(other, err)
			}
		})
	}
	close(startLine)
	go func() {
		defer close(runningObserved)
		waitFor(t, 5*time.Second, "all slots busy", func() bool {
			return statusOf(t, m, "echo").Running == conc && m.Free()["echo"] == 0
		})
	}()
	wg.Wait()
	<-runningObserved
	if ok != conc || noSlot != calls-conc || len(other) > 0 {
		t.Fatalf("ok=%d noSlot=%d other=%v; want ok=%d noSlot=%d", ok, noSlot, other, conc, calls-conc)
	}
	if free := m.Free()["echo"]; free != conc {
		t.Errorf("slots not released: Free = %d", free)
	}
}

func TestCloseKillsPlugins(t *testing.T) {
	m := startManager(t, Config{Builtins: []string{"echo", "exec"}, SelfExe: selfExe()})
	var pids []int
	for _, s := range m.Plugins() {
		pids = append(pids, s.PID)
	}
	start := time.Now()
	m.Close()
	if d := time.Since(start); d > 8*time.Second {
		t.Errorf("Close took %s", d)
	}
	for _, pid := range pids {
		if pidAlive(pid) {
			t.Errorf("plugin pid %d still alive after Close", pid)
		}
	}
	if _, err := m.Run(context.Background(), "echo", RunRequest{}, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Run after Close: %v", err)
	}
}

func TestNewValidatesConfig(t *testing.T) {
	for name, cfg := range map[string]Config{
		"builtins without SelfExe": {Builtins: []string{"echo"}},
		"bad checksum":             {Plugins: map[string]PluginConfig{"x": {Checksum: "abc"}}},
		"negative concurrency":     {Plugins: map[string]PluginConfig{"x": {Concurrency: -1}}},
	} {
		if _, err := New(cfg); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: New() error = %v", name, err)
		}
	}
}

// TestPlainStderrAtInfo checks that a plugin's plain (non-JSON) stderr
// lines, all a plugin not written in Go has, reach the agent's log at INFO
// under the plugin's name.
func TestPlainStderrAtInfo(t *testing.T) {
	dir := t.TempDir()
	install(t, dir, "testplugin", "plainstderr")
	buf := &syncBuffer{}
	logger := hclog.New(&hclog.LoggerOptions{Name: "plugins", Level: hclog.Info, Output: buf})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("manager log:\n%s", buf.String())
		}
	})
	m := startManager(t, Config{Dir: dir, Logger: logger})
	waitReady(t, m, "plainstderr")
	const want = "[INFO]  plugins.plainstderr: hello from plain stderr"
	waitFor(t, 10*time.Second, "the plain stderr line in the log at INFO", func() bool {
		return strings.Contains(buf.String(), want)
	})
}

func TestDescribeTLSError(t *testing.T) {
	for msg, want := range map[string]string{
		"connection error: desc = \"transport: authentication handshake failed: tls: first record does not look like a TLS handshake\"": "plugin does not speak mTLS",
		"transport: authentication handshake failed: tls: failed to verify certificate: x509: certificate signed by unknown authority":  "not the one in its handshake line",
		"transport: authentication handshake failed: x509: certificate is valid for example.com, not localhost":                         `must name "localhost"`,
		"transport: authentication handshake failed: remote error: tls: bad certificate":                                                "rejected the host's client certificate",
		"transport: authentication handshake failed: EOF":                                                                               "TLS handshake with the plugin failed",
	} {
		err := describeTLSError(status.Error(codes.Unavailable, msg))
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("describeTLSError(%q) = %v; want one line with %q", msg, err, want)
		}
	}
	if err := describeTLSError(status.Error(codes.Unavailable, "connection refused")); err != nil {
		t.Errorf("a non-TLS error was described as TLS: %v", err)
	}
}
