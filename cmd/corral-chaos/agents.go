package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// agent is one `corral agent` process, restartable on the same data dir.
// Signals go to its whole process group (the agent and its plugins).
type agent struct {
	i       int
	name    string
	dir     string // node dir: config, data, agent.log, effects.jsonl
	bin     string
	prefix  []string
	httpURL string

	mu     sync.Mutex
	cmd    *exec.Cmd
	done   chan struct{}
	paused bool
}

// agentConfig is what every node's config shares.
type agentConfig struct {
	nodes     int
	net       network
	pluginDir string
}

// newAgent writes node i's config and returns its (not started) agent.
func newAgent(i int, dir, bin string, c agentConfig) (*agent, error) {
	a := &agent{i: i, name: fmt.Sprintf("n%d", i+1), dir: filepath.Join(dir, fmt.Sprintf("n%d", i+1)), bin: bin, prefix: c.net.command(i)}
	p := c.net.ports(i)
	a.httpURL = "http://" + net.JoinHostPort(c.net.host(i), strconv.Itoa(p[0]))
	if err := os.MkdirAll(a.dir, 0o755); err != nil {
		return nil, err
	}
	var join []string
	for j := 0; j < c.nodes; j++ {
		if j != i {
			join = append(join, strconv.Quote(net.JoinHostPort(c.net.host(j), strconv.Itoa(c.net.ports(j)[2]))))
		}
	}
	cfg := fmt.Sprintf(`node_name = %q
data_dir  = %q
bind_addr = %q
log_level = "debug"
# The harness's clients reach the API from their own namespace, without
# tokens: the API listens on the node's address and ACLs are off.
addresses {
  http = %q
}
acl {
  enabled = false
}
ports {
  http = %d
  raft = %d
  serf = %d
}
server {
  bootstrap_expect          = %d
  retry_join                = [%s]
  server_stabilization_time = "2s"
  reconcile_interval        = "5s"
}
tags {
  name = %q
}
limits {
  lease_ttl = "4s"
}
plugin_dir = %q
plugin "chaos" {
  concurrency = 4
  config {
    log  = %q
    node = %q
  }
}
`, a.name, filepath.Join(a.dir, "data"), c.net.host(i), c.net.host(i), p[0], p[1], p[2], c.nodes, strings.Join(join, ", "),
		a.name, c.pluginDir, a.effectsPath(), a.name)
	return a, os.WriteFile(a.configPath(), []byte(cfg), 0o644)
}

func (a *agent) configPath() string  { return filepath.Join(a.dir, "agent.hcl") }
func (a *agent) effectsPath() string { return filepath.Join(a.dir, "effects.jsonl") }
func (a *agent) logPath() string     { return filepath.Join(a.dir, "agent.log") }

// start starts the agent; its output is appended to agent.log.
func (a *agent) start() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cmd != nil {
		return fmt.Errorf("%s already runs", a.name)
	}
	log, err := os.OpenFile(a.logPath(), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(log, "==== corral-chaos: starting %s at %s\n", a.name, time.Now().UTC().Format(time.RFC3339Nano))
	args := append(append([]string{}, a.prefix...), a.bin, "agent", "-config", a.configPath())
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = agentProcAttr()
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("start %s: %w", a.name, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		log.Close()
		close(done)
	}()
	a.cmd, a.done, a.paused = cmd, done, false
	return nil
}

// running reports whether the process is up (paused counts as up).
func (a *agent) running() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cmd != nil
}

// signal sends sig to the agent's process group.
func (a *agent) signal(sig syscall.Signal) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cmd == nil {
		return fmt.Errorf("%s is not running", a.name)
	}
	if err := syscall.Kill(-a.cmd.Process.Pid, sig); err != nil {
		return fmt.Errorf("signal %s to %s: %w", sig, a.name, err)
	}
	switch sig {
	case syscall.SIGSTOP:
		a.paused = true
	case syscall.SIGCONT:
		a.paused = false
	}
	return nil
}

// kill SIGKILLs the process group and waits (bounded) for the agent.
func (a *agent) kill() error {
	a.mu.Lock()
	cmd, done := a.cmd, a.done
	a.mu.Unlock()
	if cmd == nil {
		return nil
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		return errors.New(a.name + " did not exit within 10s of SIGKILL")
	}
	// Plugins die with the group; wait until none is left running in it
	// (zombies waiting for init to reap them run nothing).
	deadline := time.Now().Add(5 * time.Second)
	for groupAlive(cmd.Process.Pid) && time.Now().Before(deadline) {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		time.Sleep(20 * time.Millisecond)
	}
	a.mu.Lock()
	a.cmd, a.done, a.paused = nil, nil, false
	a.mu.Unlock()
	return nil
}

// groupAlive reports whether a process of group pgid is still running
// (not a zombie), from /proc/<pid>/stat: "pid (comm) state ppid pgrp ...".
func groupAlive(pgid int) bool {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) >= 3 && f[0] != "Z" && f[2] == strconv.Itoa(pgid) {
			return true
		}
	}
	return false
}
