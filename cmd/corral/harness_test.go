package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/corral-dev/corral/internal/freeport"
)

// corralBin is the binary built once by TestMain.
var corralBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "corral-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	corralBin = filepath.Join(dir, "corral")
	build := exec.Command("go", "build", "-o", corralBin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build corral:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is one agent process started by a test.
type proc struct {
	t       *testing.T
	name    string
	args    []string
	cmd     *exec.Cmd
	httpURL string
	log     *lockedBuffer
	done    chan struct{}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startAgent runs `corral agent args...` for the node named name and waits
// until its HTTP API answers on httpPort as that node. The process is
// SIGKILLed at cleanup if still alive.
func startAgent(t *testing.T, name string, httpPort int, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, name: name, args: args, httpURL: fmt.Sprintf("http://127.0.0.1:%d", httpPort), log: &lockedBuffer{}}
	p.start()
	return p
}

func (p *proc) start() {
	p.t.Helper()
	p.cmd = exec.Command(corralBin, append([]string{"agent"}, p.args...)...)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		p.t.Fatalf("start %s: %v", p.name, err)
	}
	p.done = make(chan struct{})
	go func() {
		_ = p.cmd.Wait()
		close(p.done)
	}()
	p.t.Cleanup(func() {
		p.kill()
		if p.t.Failed() {
			p.t.Logf("--- %s output ---\n%s", p.name, p.log.String())
		}
	})
	eventually(p.t, 20*time.Second, p.name+" HTTP API up", func() bool {
		select {
		case <-p.done:
			p.t.Fatalf("%s exited early:\n%s", p.name, p.log.String())
		default:
		}
		resp, err := http.Get(p.httpURL + "/v1/agent/self")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusUnauthorized {
			return true // ACLs on: the API is up (the name is checked without ACLs only)
		}
		var self struct {
			Node string `json:"node"`
		}
		if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&self) != nil {
			return false
		}
		if self.Node != p.name {
			// Another test's agent got the port between freePorts and our
			// bind: this agent cannot start there.
			p.t.Fatalf("%s: %s answers as node %q; port taken by another agent:\n%s", p.name, p.httpURL, self.Node, p.log.String())
		}
		return true
	})
}

// kill SIGKILLs the agent's whole process group and waits for it.
func (p *proc) kill() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	select {
	case <-p.done:
		return
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.t.Errorf("%s did not die after SIGKILL", p.name)
	}
}

// signal sends sig to the agent process only.
func (p *proc) signal(sig syscall.Signal) { _ = p.cmd.Process.Signal(sig) }

// waitExit waits for the process to exit and returns its exit code.
func (p *proc) waitExit(timeout time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(timeout):
		p.t.Fatalf("%s did not exit within %s", p.name, timeout)
		return -1
	}
}

// cli runs a corral client command against addr and returns stdout,
// stderr and the exit code.
func cli(t *testing.T, addr string, args ...string) (string, string, int) {
	t.Helper()
	return cliInput(t, addr, "", args...)
}

func cliInput(t *testing.T, addr, stdin string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, corralBin, args...)
	cmd.Env = append(os.Environ(), "CORRAL_ADDR="+addr)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("run corral %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return stdout.String(), stderr.String(), code
}

// eventually polls cond until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// freePorts returns n distinct ports free for TCP and UDP, never the same
// twice in this test process.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	ports, err := freeport.Take(n)
	if err != nil {
		t.Fatal(err)
	}
	return ports
}
