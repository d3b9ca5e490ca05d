package host

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// roleEnv makes the test binary act as a plugin host for the watchdog test.
const roleEnv = "CORRAL_HOST_TEST_ROLE"

// binDir holds the binaries built once by TestMain: upper (the example
// plugin), servebuiltin (stands in for `corral plugin serve`) and testplugin.
var binDir string

func TestMain(m *testing.M) {
	if os.Getenv(roleEnv) == "watchdog-host" {
		os.Exit(runWatchdogHost())
	}
	dir, err := os.MkdirTemp("", "corral-host-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	build := exec.Command("go", "build", "-o", dir+string(filepath.Separator),
		"../examples/upper", "../builtin/internal/servebuiltin", "./internal/testplugin")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building test plugins: %v\n%s", err, out)
		_ = os.RemoveAll(dir)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// runWatchdogHost starts the echo built-in, prints its pid and waits to be
// killed.
func runWatchdogHost() int {
	m, err := New(Config{Builtins: []string{"echo"}, SelfExe: os.Getenv("CORRAL_HOST_TEST_SELFEXE")})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := m.Start(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for _, s := range m.Plugins() {
		fmt.Printf("pid %d %s\n", s.PID, s.Status)
	}
	<-make(chan struct{}) // until SIGKILL
	return 0
}

// selfExe is the stand-in for the corral binary.
func selfExe() string { return filepath.Join(binDir, "servebuiltin") }

// install puts the built binary bin into dir under name.
func install(t *testing.T, dir, bin, name string) string {
	t.Helper()
	dst := filepath.Join(dir, name)
	if err := os.Link(filepath.Join(binDir, bin), dst); err != nil {
		data, err := os.ReadFile(filepath.Join(binDir, bin))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// testLogger collects logs and prints them only if the test fails.
func testLogger(t *testing.T) hclog.Logger {
	buf := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("manager log:\n%s", buf.String())
		}
	})
	return hclog.New(&hclog.LoggerOptions{Name: "plugins", Level: hclog.Debug, Output: buf})
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startManager creates and starts a Manager that is closed with the test.
func startManager(t *testing.T, cfg Config) *Manager {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return m
}

// statusOf returns the named plugin's status.
func statusOf(t *testing.T, m *Manager, name string) Status {
	t.Helper()
	for _, s := range m.Plugins() {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("plugin %q not listed in %+v", name, m.Plugins())
	return Status{}
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitReady waits until the plugin is ready and returns its status.
func waitReady(t *testing.T, m *Manager, name string) Status {
	t.Helper()
	waitFor(t, 15*time.Second, name+" ready", func() bool { return statusOf(t, m, name).Status == StateReady })
	return statusOf(t, m, name)
}

// pidAlive reports whether pid is a live (non-zombie) process.
func pidAlive(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	rest := string(data[bytes.LastIndexByte(data, ')')+1:])
	fields := strings.Fields(rest)
	return len(fields) > 0 && fields[0] != "Z" && fields[0] != "X"
}

// recorder is a Reporter that keeps what it is told.
type recorder struct {
	mu       sync.Mutex
	lines    []string // "stream: line"
	progress []float64
}

func (r *recorder) Log(stream, line string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, stream+": "+line)
}

func (r *recorder) Progress(percent float64, _ string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.progress = append(r.progress, percent)
}

func (r *recorder) Lines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.lines...)
}

func (r *recorder) Progresses() []float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]float64(nil), r.progress...)
}

// readPID parses "pid N ..." from the watchdog host's output.
func readPID(t *testing.T, out io.Reader) int {
	t.Helper()
	var line string
	buf := make([]byte, 1)
	for {
		n, err := out.Read(buf)
		if n == 1 {
			if buf[0] == '\n' {
				break
			}
			line += string(buf[0])
		}
		if err != nil {
			t.Fatalf("reading host output: %v (got %q)", err, line)
		}
	}
	fields := strings.Fields(line)
	if len(fields) != 3 || fields[0] != "pid" || fields[2] != string(StateReady) {
		t.Fatalf("unexpected host output %q", line)
	}
	pid, err := strconv.Atoi(fields[1])
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// asJobError returns err as a *JobError or fails the test.
func asJobError(t *testing.T, err error) *JobError {
	t.Helper()
	var je *JobError
	if !errors.As(err, &je) {
		t.Fatalf("want *JobError, got %T: %v", err, err)
	}
	return je
}
