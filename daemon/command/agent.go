package command

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/corral-dev/corral/daemon"
	"github.com/corral-dev/corral/daemon/api"
	"github.com/corral-dev/corral/daemon/config"
	"github.com/hashicorp/go-hclog"
)

// leaveGrace bounds how long a forced shutdown waits for an interrupted
// leave to return.
const leaveGrace = 5 * time.Second

// agentProcess is what the agent command needs of *daemon.Agent.
type agentProcess interface {
	Start() error
	HTTPAddr() string
	Leave() error
	Shutdown() error
	ShutdownCh() <-chan struct{}
}

// AgentCommand is `corral agent`: it runs a node until a signal stops it.
type AgentCommand struct {
	Meta

	// newAgent builds the agent; nil means daemon.New. Tests replace it.
	newAgent func(cfg *config.Config, logger hclog.Logger) (agentProcess, error)
	// signals delivers SIGINT, SIGTERM and SIGHUP; nil means the
	// process's own.
	signals <-chan os.Signal
}

// Synopsis implements cli.Command.
func (c *AgentCommand) Synopsis() string { return "Run a Corral node" }

// Help implements cli.Command.
func (c *AgentCommand) Help() string {
	return strings.TrimSpace(`
Usage: corral agent [options]

  Run a Corral node: a raft server and a worker. Settings come from the
  defaults, then the -config files in order, then the flags below.

  SIGINT leaves the cluster gracefully and stops. SIGTERM stops without
  leaving unless server { leave_on_terminate = true }. A second signal
  during a leave stops at once.

Options:

  -config=<path>          An HCL file, or a directory of *.hcl files (name
                          order). Repeatable; later files override earlier.
  -dev                    Development mode: one node on 127.0.0.1,
                          bootstrapped at once, data in a temporary
                          directory unless -data-dir is given.
  -data-dir=<path>        Where raft, serf and job logs are stored.
  -node=<name>            Node name. Default: the hostname.
  -bind=<addr>            Address every listener binds to. Default: 0.0.0.0.
  -join=<addr>            Serf address (host:port) of a node to join;
                          repeatable, retried until one answers.
  -bootstrap-expect=<n>   Servers to wait for before bootstrapping raft.
  -http-port=<port>       HTTP API port. Default: 4780.
  -raft-port=<port>       Raft port. Default: 4781.
  -serf-port=<port>       Serf gossip port (TCP and UDP). Default: 4782.
  -log-level=<level>      trace, debug, info, warn or error. Default: info.
`)
}

// agentFlags are the flag values of one `corral agent` run.
type agentFlags struct {
	configs         listFlag
	joins           listFlag
	dev             bool
	dataDir         string
	node            string
	bind            string
	bootstrapExpect int
	httpPort        int
	raftPort        int
	serfPort        int
	logLevel        string
	set             map[string]bool // flags given on the command line
}

// Run implements cli.Command.
func (c *AgentCommand) Run(args []string) int {
	var f agentFlags
	fs := c.flagSet("agent", false, c.Help)
	fs.Var(&f.configs, "config", "")
	fs.Var(&f.joins, "join", "")
	fs.BoolVar(&f.dev, "dev", false, "")
	fs.StringVar(&f.dataDir, "data-dir", "", "")
	fs.StringVar(&f.node, "node", "", "")
	fs.StringVar(&f.bind, "bind", "", "")
	fs.IntVar(&f.bootstrapExpect, "bootstrap-expect", 0, "")
	fs.IntVar(&f.httpPort, "http-port", 0, "")
	fs.IntVar(&f.raftPort, "raft-port", 0, "")
	fs.IntVar(&f.serfPort, "serf-port", 0, "")
	fs.StringVar(&f.logLevel, "log-level", "", "")
	pos, err := parse(fs, args)
	if err != nil {
		return ExitError
	}
	if len(pos) != 0 {
		return c.usageError(c.Help(), "agent takes no arguments, got %q; settings are flags or -config files", pos)
	}
	f.set = map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { f.set[fl.Name] = true })

	cfg, err := buildConfig(&f)
	if err != nil {
		return c.fail(err)
	}
	logger := hclog.New(&hclog.LoggerOptions{
		Name:   "corral",
		Level:  hclog.LevelFromString(cfg.LogLevel),
		Output: c.Stderr,
	})
	logger.Debug("Go collector target", "gogc", tuneGC(c.Getenv))

	newAgent := c.newAgent
	if newAgent == nil {
		newAgent = func(cfg *config.Config, logger hclog.Logger) (agentProcess, error) {
			a, err := daemon.New(cfg, logger, daemon.WithConfigLoader(func() (*config.Config, error) { return buildConfig(&f) }))
			if err != nil {
				return nil, err
			}
			return a, nil
		}
	}
	agent, err := newAgent(cfg, logger)
	if err != nil {
		return c.fail(fmt.Errorf("create agent: %w", err))
	}

	signals := c.signals
	if signals == nil {
		ch := make(chan os.Signal, 2)
		signal.Notify(ch, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
		defer signal.Stop(ch)
		signals = ch
	}

	if err := agent.Start(); err != nil {
		if serr := agent.Shutdown(); serr != nil {
			logger.Error("shutdown after failed start", "error", serr)
		}
		return c.fail(fmt.Errorf("start agent: %w", err))
	}
	c.banner(cfg, agent)
	return c.wait(cfg, agent, logger, signals)
}

// buildConfig layers defaults, files and flags, then validates.
func buildConfig(f *agentFlags) (*config.Config, error) {
	base := config.Default()
	if f.dev {
		base = config.Dev()
	}
	cfg, err := config.Load(base, f.configs...)
	if err != nil {
		return nil, err
	}
	if f.set["data-dir"] {
		cfg.DataDir = f.dataDir
	}
	if f.set["node"] {
		cfg.NodeName = f.node
	}
	if f.set["bind"] {
		cfg.BindAddr = f.bind
	}
	if len(f.joins) > 0 {
		cfg.Server.RetryJoin = append(cfg.Server.RetryJoin, f.joins...)
	}
	if f.set["bootstrap-expect"] {
		cfg.Server.BootstrapExpect = f.bootstrapExpect
	}
	if f.set["http-port"] {
		cfg.Ports.HTTP = f.httpPort
	}
	if f.set["raft-port"] {
		cfg.Ports.Raft = f.raftPort
	}
	if f.set["serf-port"] {
		cfg.Ports.Serf = f.serfPort
	}
	if f.set["log-level"] {
		cfg.LogLevel = f.logLevel
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// banner prints where the node runs.
func (c *AgentCommand) banner(cfg *config.Config, agent agentProcess) {
	dataDir := cfg.DataDir
	if d, ok := agent.(interface{ DataDir() string }); ok && d.DataDir() != "" {
		dataDir = d.DataDir() // the temporary directory of a -dev agent
	}
	if dataDir == "" {
		dataDir = "(temporary directory)"
	}
	scheme := "http://"
	if cfg.TLS.HTTP {
		scheme = "https://"
	}
	mode := "server"
	if cfg.Dev {
		mode = "dev (single node, not for production)"
	}
	fmt.Fprintf(c.Stdout, "==> Corral agent running (version %s)\n", daemon.Version)
	fields(c.Stdout, []field{
		{"      Node", cfg.NodeName},
		{"  HTTP API", scheme + agent.HTTPAddr()},
		{"  Data dir", dataDir},
		{"      Mode", mode},
	})
	fmt.Fprintln(c.Stdout, "\n==> Log output follows (SIGINT leaves the cluster and stops)")
}

// wait runs until a signal or the agent stops on its own.
func (c *AgentCommand) wait(cfg *config.Config, agent agentProcess, logger hclog.Logger, signals <-chan os.Signal) int {
	var sig os.Signal
	for sig == nil {
		select {
		case <-agent.ShutdownCh():
			logger.Info("agent stopped")
			return ExitOK
		case sig = <-signals:
		}
		if sig == syscall.SIGHUP {
			sig = nil
			c.reload(agent, logger)
		}
	}
	if sig != os.Interrupt && !cfg.Server.LeaveOnTerminate {
		logger.Info("shutting down without leaving", "signal", sig.String())
		if err := agent.Shutdown(); err != nil {
			return c.fail(fmt.Errorf("shutdown: %w", err))
		}
		return ExitOK
	}

	logger.Info("leaving the cluster gracefully", "signal", sig.String())
	done := make(chan error, 1)
	go func() { done <- agent.Leave() }()
	select {
	case err := <-done:
		if err != nil {
			logger.Error("leave failed; shutting down", "error", err)
			return c.fail(errors.Join(fmt.Errorf("leave: %w", err), agent.Shutdown()))
		}
		return ExitOK
	case sig = <-signals:
		logger.Warn("second signal: shutting down without finishing the leave", "signal", sig.String())
		err := agent.Shutdown()
		select {
		case <-done:
		case <-time.After(leaveGrace):
			logger.Warn("leave did not return after shutdown", "waited", leaveGrace)
		}
		if err != nil {
			return c.fail(fmt.Errorf("shutdown: %w", err))
		}
		return ExitError
	}
}

// reload runs a SIGHUP reload; errors are logged, the agent keeps running.
func (c *AgentCommand) reload(agent agentProcess, logger hclog.Logger) {
	r, ok := agent.(interface {
		Reload(context.Context) (api.ReloadResult, error)
	})
	if !ok {
		return
	}
	logger.Info("SIGHUP: reloading")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := r.Reload(ctx); err != nil {
		logger.Error("reload failed; the running configuration stays", "error", err)
	}
}

// listFlag collects a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(s string) error {
	*l = append(*l, s)
	return nil
}
