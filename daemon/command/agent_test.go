package command

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/corral-dev/corral/daemon/config"
	"github.com/hashicorp/go-hclog"
)

// fakeAgent records what the agent command does with it.
type fakeAgent struct {
	cfg        *config.Config
	startErr   error
	leaveErr   error
	leaveBlock chan struct{} // when set, Leave closes leaving, then waits for it (or Shutdown)
	leaving    chan struct{}
	started    chan struct{}
	stopped    chan struct{} // ShutdownCh

	mu       sync.Mutex
	calls    []string
	shutdown chan struct{}
}

func newFakeAgent() *fakeAgent {
	return &fakeAgent{started: make(chan struct{}), stopped: make(chan struct{}), shutdown: make(chan struct{})}
}

func (a *fakeAgent) record(call string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls = append(a.calls, call)
}

func (a *fakeAgent) Calls() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.calls...)
}

func (a *fakeAgent) Start() error {
	a.record("start")
	close(a.started)
	return a.startErr
}

func (a *fakeAgent) HTTPAddr() string { return "127.0.0.1:4780" }

func (a *fakeAgent) Leave() error {
	a.record("leave")
	if a.leaveBlock != nil {
		close(a.leaving)
		select {
		case <-a.leaveBlock:
		case <-a.shutdown:
		}
	}
	return a.leaveErr
}

func (a *fakeAgent) Shutdown() error {
	a.record("shutdown")
	close(a.shutdown)
	return nil
}

func (a *fakeAgent) ShutdownCh() <-chan struct{} { return a.stopped }

// agentRun is one `corral agent` run in the background.
type agentRun struct {
	agent   *fakeAgent
	signals chan os.Signal
	stdout  *bytes.Buffer
	stderr  *bytes.Buffer
	done    chan int
}

// startAgentCmd runs the agent command with a fake agent and waits until
// it has been started (or the command has ended).
func startAgentCmd(t *testing.T, fa *fakeAgent, args ...string) *agentRun {
	t.Helper()
	r := &agentRun{agent: fa, signals: make(chan os.Signal, 2), stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}, done: make(chan int, 1)}
	cmd := &AgentCommand{
		Meta: Meta{Stdin: strings.NewReader(""), Stdout: r.stdout, Stderr: r.stderr, Getenv: func(string) string { return "" }},
		newAgent: func(cfg *config.Config, _ hclog.Logger) (agentProcess, error) {
			fa.cfg = cfg
			return fa, nil
		},
		signals: r.signals,
	}
	go func() { r.done <- cmd.Run(args) }()
	select {
	case <-fa.started:
	case code := <-r.done:
		r.done <- code
	case <-time.After(10 * time.Second):
		t.Fatal("agent command did not start the agent")
	}
	return r
}

// exit waits for the command's exit code.
func (r *agentRun) exit(t *testing.T) int {
	t.Helper()
	select {
	case code := <-r.done:
		return code
	case <-time.After(10 * time.Second):
		t.Fatal("agent command did not return")
		return -1
	}
}

func TestAgentSignals(t *testing.T) {
	leaveFile := filepath.Join(t.TempDir(), "leave.hcl")
	if err := os.WriteFile(leaveFile, []byte("server {\n  leave_on_terminate = true\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		args  []string
		sig   os.Signal
		calls []string
	}{
		{"SIGINT leaves", []string{"-dev"}, os.Interrupt, []string{"start", "leave"}},
		{"SIGTERM shuts down", []string{"-dev"}, syscall.SIGTERM, []string{"start", "shutdown"}},
		{"SIGTERM leaves with leave_on_terminate", []string{"-dev", "-config", leaveFile}, syscall.SIGTERM, []string{"start", "leave"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := startAgentCmd(t, newFakeAgent(), tc.args...)
			r.signals <- tc.sig
			if code := r.exit(t); code != 0 {
				t.Errorf("exit code = %d, stderr: %s", code, r.stderr)
			}
			if got := r.agent.Calls(); !reflect.DeepEqual(got, tc.calls) {
				t.Errorf("calls = %v, want %v", got, tc.calls)
			}
		})
	}

	t.Run("agent stops on its own", func(t *testing.T) {
		fa := newFakeAgent()
		r := startAgentCmd(t, fa, "-dev")
		close(fa.stopped)
		if code := r.exit(t); code != 0 {
			t.Errorf("exit code = %d", code)
		}
		if got := fa.Calls(); !reflect.DeepEqual(got, []string{"start"}) {
			t.Errorf("calls = %v", got)
		}
	})

	t.Run("second signal forces shutdown", func(t *testing.T) {
		fa := newFakeAgent()
		fa.leaveBlock, fa.leaving = make(chan struct{}), make(chan struct{})
		r := startAgentCmd(t, fa, "-dev")
		r.signals <- os.Interrupt
		select {
		case <-fa.leaving:
		case <-time.After(10 * time.Second):
			t.Fatal("Leave was not called")
		}
		r.signals <- os.Interrupt
		if code := r.exit(t); code != 1 {
			t.Errorf("exit code = %d, want 1", code)
		}
		if got := fa.Calls(); !reflect.DeepEqual(got, []string{"start", "leave", "shutdown"}) {
			t.Errorf("calls = %v", got)
		}
	})

	t.Run("failed leave", func(t *testing.T) {
		fa := newFakeAgent()
		fa.leaveErr = errors.New("no quorum")
		r := startAgentCmd(t, fa, "-dev")
		r.signals <- os.Interrupt
		if code := r.exit(t); code != 1 {
			t.Errorf("exit code = %d, want 1", code)
		}
		if !strings.Contains(r.stderr.String(), "error: leave: no quorum") {
			t.Errorf("stderr = %s", r.stderr)
		}
	})

	t.Run("failed start", func(t *testing.T) {
		fa := newFakeAgent()
		fa.startErr = errors.New("listen tcp 127.0.0.1:4780: bind: address already in use")
		r := startAgentCmd(t, fa, "-dev")
		if code := r.exit(t); code != 1 {
			t.Errorf("exit code = %d, want 1", code)
		}
		if got := fa.Calls(); !reflect.DeepEqual(got, []string{"start", "shutdown"}) {
			t.Errorf("calls = %v", got)
		}
		if !strings.Contains(r.stderr.String(), "error: start agent: listen tcp 127.0.0.1:4780: bind: address already in use") {
			t.Errorf("stderr = %s", r.stderr)
		}
	})
}

func TestAgentConfigLayers(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "corral.hcl")
	if err := os.WriteFile(file, []byte(`
node_name = "file-node"
data_dir  = "/from/file"
log_level = "debug"
ports { http = 5000  raft = 5001  serf = 5002 }
server {
  bootstrap_expect = 3
  retry_join = ["10.0.0.9:4782"]
}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	fa := newFakeAgent()
	r := startAgentCmd(t, fa, "-config", file, "-node", "flag-node", "-http-port", "6000", "-join", "10.0.0.8:4782",
		"-bootstrap-expect", "1", "-data-dir", dir, "-log-level", "warn", "-bind", "127.0.0.1")
	r.signals <- syscall.SIGTERM
	if code := r.exit(t); code != 0 {
		t.Fatalf("exit code = %d, stderr: %s", code, r.stderr)
	}
	c := fa.cfg
	if c.NodeName != "flag-node" || c.DataDir != dir || c.LogLevel != "warn" || c.BindAddr != "127.0.0.1" {
		t.Errorf("flags did not override the file: %+v", c)
	}
	if c.Ports != (config.Ports{HTTP: 6000, Raft: 5001, Serf: 5002}) {
		t.Errorf("ports = %+v, want the file's with -http-port on top", c.Ports)
	}
	if c.Server.BootstrapExpect != 1 || !reflect.DeepEqual(c.Server.RetryJoin, []string{"10.0.0.9:4782", "10.0.0.8:4782"}) {
		t.Errorf("server = %+v", c.Server)
	}
	if c.Dev {
		t.Error("Dev set without -dev")
	}
	out := r.stdout.String()
	for _, want := range []string{"Corral agent running", "Node", "flag-node", "http://127.0.0.1:4780", dir} {
		if !strings.Contains(out, want) {
			t.Errorf("banner does not contain %q:\n%s", want, out)
		}
	}

	// -dev alone: the dev defaults, no data dir needed.
	fa = newFakeAgent()
	r = startAgentCmd(t, fa, "-dev")
	r.signals <- syscall.SIGTERM
	r.exit(t)
	if c := fa.cfg; !c.Dev || c.BindAddr != "127.0.0.1" || c.Server.BootstrapExpect != 1 || c.DataDir != "" {
		t.Errorf("dev config = %+v", c)
	}
	if !strings.Contains(r.stdout.String(), "(temporary directory)") {
		t.Errorf("dev banner:\n%s", r.stdout)
	}
}

func TestAgentBadConfig(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.hcl")
	if err := os.WriteFile(bad, []byte("server {\n  bootstrap_expekt = 3\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args []string
		want string
	}{
		{nil, `error: invalid configuration: data_dir = "": required`},
		{[]string{"-dev", "-config", bad}, `bad.hcl:2,3: unsupported argument in block "server"`},
		{[]string{"-dev", "-config", bad}, `Did you mean "bootstrap_expect"?`},
		{[]string{"-dev", "-log-level", "loud"}, `log_level = "loud": must be one of`},
		{[]string{"-dev", "-http-port", "99999"}, "ports.http = 99999"},
		{[]string{"-dev", "-config", filepath.Join(t.TempDir(), "none.hcl")}, "error: read config:"},
		{[]string{"-dev", "-bogus"}, "unknown flag -bogus"},
		{[]string{"-dev", "extra"}, "agent takes no arguments"},
	}
	for _, tc := range cases {
		fa := newFakeAgent()
		r := startAgentCmd(t, fa, tc.args...)
		if code := r.exit(t); code != 1 {
			t.Errorf("agent %v: exit code = %d, want 1", tc.args, code)
		}
		if !strings.Contains(r.stderr.String(), tc.want) {
			t.Errorf("agent %v: stderr does not contain %q:\n%s", tc.args, tc.want, r.stderr)
		}
		if len(fa.Calls()) != 0 {
			t.Errorf("agent %v: an agent was started with a bad config", tc.args)
		}
	}
}
