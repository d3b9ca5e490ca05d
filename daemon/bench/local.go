package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/corral-dev/corral/daemon/api"
	"github.com/corral-dev/corral/daemon/certs"
	"github.com/corral-dev/corral/internal/freeport"
	"github.com/hashicorp/go-hclog"
)

const (
	// stopGrace is how long an agent gets to exit after SIGTERM before its
	// process group is killed.
	stopGrace = 10 * time.Second
	// logTail is how much of an agent's log a start failure shows.
	logTail = 2 << 10
	// pollEvery is the pause between readiness checks.
	pollEvery = 50 * time.Millisecond
)

// LocalConfig describes a throwaway local cluster.
type LocalConfig struct {
	// Nodes is the number of agents (and raft voters).
	Nodes int
	// Binary is the corral executable; "" means os.Executable().
	Binary string
	// EchoConcurrency is the echo plugin's slots per agent.
	EchoConcurrency int
	// StartTimeout bounds the wait for a leader, Nodes voters and ready
	// echo plugins.
	StartTimeout time.Duration
	// KeepDirs leaves the directory tree in place on Stop.
	KeepDirs bool
	// TLS makes a CA and a server certificate in the cluster's directory
	// and runs the node plane with mutual TLS.
	TLS bool
}

// Cluster is a set of agents running as child processes of this one, all
// under one temporary directory. Stop it exactly once.
type Cluster struct {
	cfg    LocalConfig
	logger hclog.Logger
	dir    string
	agents []*localAgent
}

// localAgent is one child agent.
type localAgent struct {
	name    string
	dir     string
	logPath string
	http    string // host:port
	cmd     *exec.Cmd
	done    chan struct{} // closed when cmd.Wait returns
	waitErr error         // set before done is closed
}

// StartLocal starts cfg.Nodes agents on 127.0.0.1 with free ports, each
// with its own data directory and config file, joined to one another by
// retry_join with bootstrap_expect = Nodes, and waits until they have a
// leader, Nodes voters and the echo plugin ready on every node. On failure
// it stops what it started, removes the directories and returns an error
// with the tail of each agent's log.
func StartLocal(ctx context.Context, cfg LocalConfig, logger hclog.Logger) (*Cluster, error) {
	if cfg.Nodes < 1 {
		return nil, fmt.Errorf("%w: %d nodes", ErrInvalidConfig, cfg.Nodes)
	}
	bin := cfg.Binary
	if bin == "" {
		var err error
		if bin, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("find the corral executable: %w", err)
		}
	}
	dir, err := os.MkdirTemp("", "corral-bench-")
	if err != nil {
		return nil, fmt.Errorf("make bench dir: %w", err)
	}
	c := &Cluster{cfg: cfg, logger: logger, dir: dir}
	ports, err := freePorts(3 * cfg.Nodes)
	if err != nil {
		c.removeDir()
		return nil, err
	}
	tlsBlock := ""
	if cfg.TLS {
		if tlsBlock, err = makeTLS(dir); err != nil {
			c.removeDir()
			return nil, err
		}
	}
	var joins []string
	for i := range cfg.Nodes {
		joins = append(joins, strconv.Quote(net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[3*i+2]))))
	}
	for i := range cfg.Nodes {
		a := &localAgent{
			name: fmt.Sprintf("bench-%d", i+1),
			dir:  filepath.Join(dir, fmt.Sprintf("node%d", i+1)),
			http: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[3*i])),
			done: make(chan struct{}),
		}
		a.logPath = filepath.Join(a.dir, "agent.log")
		if err := a.start(bin, agentConfig(a, cfg, ports[3*i:3*i+3], joins)+tlsBlock); err != nil {
			c.agents = append(c.agents, a) // whatever did start is stopped below
			return nil, c.failStart(err)
		}
		c.agents = append(c.agents, a)
	}
	logger.Info("started local agents", "nodes", cfg.Nodes, "dir", dir)
	if err := c.waitReady(ctx); err != nil {
		return nil, c.failStart(err)
	}
	return c, nil
}

// agentConfig renders one agent's HCL configuration.
func agentConfig(a *localAgent, cfg LocalConfig, ports []int, joins []string) string {
	return fmt.Sprintf(`node_name = %q
data_dir  = %q
bind_addr = "127.0.0.1"
log_level = "warn"
ports {
  http = %d
  raft = %d
  serf = %d
}
server {
  bootstrap_expect = %d
  retry_join       = [%s]
}
plugin "echo" {
  concurrency = %d
}
# A throwaway cluster on 127.0.0.1, gone when the bench ends.
acl {
  enabled = false
}
`, a.name, filepath.Join(a.dir, "data"), ports[0], ports[1], ports[2],
		cfg.Nodes, strings.Join(joins, ", "), cfg.EchoConcurrency)
}

// start writes the agent's config and starts its process in its own
// process group, killed with this process (Pdeathsig). done is closed when
// the process ends, or at once when it never started.
func (a *localAgent) start(bin, config string) error {
	if err := a.launch(bin, config); err != nil {
		close(a.done)
		return err
	}
	go func() {
		a.waitErr = a.cmd.Wait()
		close(a.done)
	}()
	return nil
}

// launch prepares the agent's directory and starts its process.
func (a *localAgent) launch(bin, config string) error {
	if err := os.MkdirAll(a.dir, 0o700); err != nil {
		return fmt.Errorf("make agent dir: %w", err)
	}
	cfgPath := filepath.Join(a.dir, "agent.hcl")
	if err := os.WriteFile(cfgPath, []byte(config), 0o600); err != nil {
		return fmt.Errorf("write agent config: %w", err)
	}
	logFile, err := os.Create(a.logPath)
	if err != nil {
		return fmt.Errorf("create agent log: %w", err)
	}
	defer logFile.Close() // the child has its own descriptor
	a.cmd = exec.Command(bin, "agent", "-config", cfgPath)
	a.cmd.Stdout = logFile
	a.cmd.Stderr = logFile
	a.cmd.SysProcAttr = childAttr()
	if err := a.cmd.Start(); err != nil {
		a.cmd = nil
		return fmt.Errorf("start agent %s: %w", a.name, err)
	}
	return nil
}

// exited reports whether the agent's process has ended.
func (a *localAgent) exited() bool {
	select {
	case <-a.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM, waits up to stopGrace, then kills the agent's whole
// process group (its plugin processes too) and waits for it to end.
func (a *localAgent) stop() error {
	if a.cmd == nil || a.cmd.Process == nil {
		return nil
	}
	pid := a.cmd.Process.Pid
	var err error
	if !a.exited() {
		_ = a.cmd.Process.Signal(syscall.SIGTERM)
		timer := time.NewTimer(stopGrace)
		select {
		case <-a.done:
		case <-timer.C:
			err = fmt.Errorf("agent %s did not stop within %s of SIGTERM; killed", a.name, stopGrace)
		}
		timer.Stop()
	}
	// Anything left in the group (plugins whose watchdog has not fired
	// yet, or the agent itself after the grace period) is killed.
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	<-a.done
	return err
}

// tail returns the last logTail bytes of the agent's log.
func (a *localAgent) tail() string {
	b, err := os.ReadFile(a.logPath)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	if len(b) > logTail {
		b = b[len(b)-logTail:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return "(log empty)"
	}
	return string(bytes.TrimRight(b, "\n"))
}

// Addresses returns the agents' HTTP API addresses (http://host:port).
func (c *Cluster) Addresses() []string {
	out := make([]string, len(c.agents))
	for i, a := range c.agents {
		out[i] = "http://" + a.http
	}
	return out
}

// CPU returns the CPU time used so far by the agents and by their plugin
// processes; ok is false where the platform does not tell (only Linux
// does). Time of processes that already ended is not included.
func (c *Cluster) CPU() (agents, plugins time.Duration, ok bool) {
	var pgids []int
	for _, a := range c.agents {
		if a.cmd != nil && a.cmd.Process != nil {
			pgids = append(pgids, a.cmd.Process.Pid)
		}
	}
	return groupCPU(pgids)
}

// Stop stops every agent (SIGTERM, then SIGKILL of its process group after
// a bound) and removes the cluster's directory unless KeepDirs.
func (c *Cluster) Stop() error {
	errs := make([]error, len(c.agents))
	done := make(chan int)
	for i, a := range c.agents {
		go func() {
			errs[i] = a.stop()
			done <- i
		}()
	}
	for range c.agents {
		<-done
	}
	c.removeDir()
	return errors.Join(errs...)
}

// removeDir deletes the cluster's directory, or names it when kept.
func (c *Cluster) removeDir() {
	if c.cfg.KeepDirs {
		c.logger.Info("kept local cluster directory", "dir", c.dir)
		return
	}
	if err := os.RemoveAll(c.dir); err != nil {
		c.logger.Error("remove local cluster directory", "dir", c.dir, "error", err)
	}
}

// failStart collects the agents' log tails into err, stops the cluster and
// returns the error.
func (c *Cluster) failStart(err error) error {
	var b strings.Builder
	for _, a := range c.agents {
		state := "running"
		if a.exited() {
			state = fmt.Sprintf("exited: %v", a.waitErr)
		}
		fmt.Fprintf(&b, "\n--- %s (%s), %s:\n%s", a.name, state, a.logPath, a.tail())
	}
	if serr := c.Stop(); serr != nil {
		c.logger.Error("stop local cluster", "error", serr)
	}
	return fmt.Errorf("%w: %w%s", ErrClusterStart, err, b.String())
}

// waitReady polls until every node sees a leader and Nodes voters and has
// its echo plugin ready, an agent exits, or StartTimeout passes.
func (c *Cluster) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.StartTimeout)
	defer cancel()
	clients := make([]*api.Client, len(c.agents))
	for i, a := range c.agents {
		cl, err := api.NewClient(a.http, "")
		if err != nil {
			return err
		}
		clients[i] = cl
	}
	ticker := time.NewTicker(pollEvery)
	defer ticker.Stop()
	var last error
	for {
		for _, a := range c.agents {
			if a.exited() {
				return fmt.Errorf("agent %s exited: %v", a.name, a.waitErr)
			}
		}
		if last = c.ready(ctx, clients); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("not ready after %s: %w", c.cfg.StartTimeout, last)
			}
			return ctx.Err()
		case <-ticker.C:
		}
	}
}

// ready returns nil when every node sees a leader and the expected voters
// and runs a ready echo plugin, else what is still missing.
func (c *Cluster) ready(ctx context.Context, clients []*api.Client) error {
	for i, cl := range clients {
		name := c.agents[i].name
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		rc, err := cl.RaftConfiguration(ctx)
		if err != nil {
			cancel()
			return fmt.Errorf("%s: raft configuration: %w", name, err)
		}
		voters, leader := 0, false
		for _, s := range rc.Servers {
			if s.Voter {
				voters++
			}
			leader = leader || s.Leader
		}
		if voters != c.cfg.Nodes || !leader {
			cancel()
			return fmt.Errorf("%s: %d of %d voters, leader known: %t", name, voters, c.cfg.Nodes, leader)
		}
		pl, err := cl.Plugins(ctx)
		cancel()
		if err != nil {
			return fmt.Errorf("%s: plugins: %w", name, err)
		}
		echo := false
		for _, p := range pl.Plugins {
			echo = echo || (p.Name == "echo" && p.Status == "ready")
		}
		if !echo {
			return fmt.Errorf("%s: echo plugin not ready", name)
		}
	}
	return nil
}

// freePorts returns n distinct ports free for TCP and UDP on 127.0.0.1,
// below the ephemeral range (see internal/freeport).
func freePorts(n int) ([]int, error) {
	ports, err := freeport.Take(n)
	if err != nil {
		return nil, fmt.Errorf("find a free port: %w", err)
	}
	return ports, nil
}

// makeTLS writes a CA and one server certificate into dir and returns the
// tls block every local agent uses (node plane only; the bench talks
// plain HTTP to 127.0.0.1).
func makeTLS(dir string) (string, error) {
	ca, err := certs.CreateCA("bench", 24*time.Hour)
	if err != nil {
		return "", err
	}
	srv, err := certs.CreateCert(ca, certs.CertRequest{Cluster: "global", Server: true, ValidFor: 24 * time.Hour})
	if err != nil {
		return "", err
	}
	paths := map[string][]byte{"ca.pem": ca.Cert, "server.pem": srv.Cert, "server-key.pem": srv.Key}
	for name, b := range paths {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			return "", fmt.Errorf("write %s: %w", name, err)
		}
	}
	return fmt.Sprintf("tls {\n  ca_file = %q\n  cert_file = %q\n  key_file = %q\n}\n",
		filepath.Join(dir, "ca.pem"), filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem")), nil
}
