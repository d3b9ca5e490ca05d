package command

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/corral-dev/corral/daemon/bench"
	"github.com/hashicorp/go-hclog"
)

// BenchCommand is `corral bench`: it measures a cluster's job throughput
// and latency with the daemon/bench driver.
type BenchCommand struct {
	Meta
}

// Synopsis implements cli.Command.
func (c *BenchCommand) Synopsis() string { return "Measure job throughput and latency" }

// Help implements cli.Command.
func (c *BenchCommand) Help() string {
	return strings.TrimSpace(`
Usage: corral bench (-local N | -address ADDR) [options]

  Run no-op echo jobs through a cluster and report jobs/s and latencies.
  With -local N it starts a throwaway cluster of N agents (child processes
  of this binary on 127.0.0.1, each with its own temporary data directory,
  fsync on) and removes it afterwards; with -address it loads an existing
  cluster, spreading submits over every node it finds.

  Progress is drawn on stderr when it is a terminal. The last line on
  stdout is the result:

    RESULT mode=… nodes=… jobs=… jobs_per_s=… e2e_p50_ms=… e2e_p99_ms=…
           submit_p50_ms=… submit_p99_ms=… (more key=value fields)

Modes:

  -mode=steady     A closed loop of -inflight workers; each submits one job
                   and waits (blocking query) until it has succeeded, for
                   -warmup then -duration. jobs/s counts jobs finished in
                   the window; submit latency is POST to ack, end-to-end is
                   POST start to success seen.
  -mode=burndown   Enqueue -jobs jobs in batches of -batch from -submitters
                   concurrent clients and time first submit to last
                   completion. End-to-end latency is each job's created_at
                   to finished_at; submit latency is per batch.

Cluster options:

  -local=<n>               Start n agents (1-9).
  -address=<addr>          An agent's HTTP API; repeatable or comma-separated.
                           With one address the other nodes are found
                           through its member list. Default: $CORRAL_ADDR
                           when -local is not given.
  -token=<token>           Sent with each request. Default: $CORRAL_TOKEN.
  -via=<nodes>             Which nodes take the load: all, leader or
                           followers (to time the leader's path apart from
                           a forwarded one). Default: all.
  -echo-concurrency=<n>    Echo plugin slots per local agent. Default: 256.
  -start-timeout=<d>       Time for the local cluster to come up. Default: 60s.
  -keep                    Keep the local agents' directories (data, logs).
  -tls                     Run the local cluster's node plane with mutual TLS
                           (a CA and certificates made for the run).

Load options:

  -mode=<mode>             steady or burndown. Default: steady.
  -queue=<name>            Queue for the bench jobs. Default: bench.
  -size=<bytes>            Payload size of each job. Default: 200.
  -inflight=<n>            Steady: concurrent workers. Default: 64.
  -duration=<d>            Steady: measured window. Default: 10s.
  -warmup=<d>              Steady: unmeasured warmup. Default: 1s.
  -jobs=<n>                Burndown: jobs to enqueue. Default: 100000.
  -batch=<n>               Burndown: jobs per submit request. Default: 1000.
  -submitters=<n>          Burndown: concurrent submitters. Default: 4.
  -timeout=<d>             Burndown: give up after this long. Default: 10m.

Output options:

  -json                    Print the result as one JSON object instead.
`)
}

// Run implements cli.Command.
func (c *BenchCommand) Run(args []string) int {
	cfg := bench.DefaultConfig()
	var mode string
	var addrs listFlag
	fs := c.flagSet("bench", false, c.Help)
	fs.StringVar(&mode, "mode", cfg.Mode.String(), "")
	fs.IntVar(&cfg.Local, "local", 0, "")
	fs.Var(&addrs, "address", "")
	fs.StringVar(&c.token, "token", "", "")
	fs.BoolVar(&c.json, "json", false, "")
	fs.IntVar(&cfg.EchoConcurrency, "echo-concurrency", cfg.EchoConcurrency, "")
	fs.DurationVar(&cfg.StartTimeout, "start-timeout", cfg.StartTimeout, "")
	fs.BoolVar(&cfg.KeepDirs, "keep", false, "")
	fs.BoolVar(&cfg.TLS, "tls", false, "")
	fs.StringVar(&cfg.Via, "via", cfg.Via, "")
	fs.StringVar(&cfg.Queue, "queue", cfg.Queue, "")
	fs.IntVar(&cfg.Size, "size", cfg.Size, "")
	fs.IntVar(&cfg.Inflight, "inflight", cfg.Inflight, "")
	fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "")
	fs.DurationVar(&cfg.Warmup, "warmup", cfg.Warmup, "")
	fs.IntVar(&cfg.Jobs, "jobs", cfg.Jobs, "")
	fs.IntVar(&cfg.Batch, "batch", cfg.Batch, "")
	fs.IntVar(&cfg.Submitters, "submitters", cfg.Submitters, "")
	fs.DurationVar(&cfg.Timeout, "timeout", cfg.Timeout, "")
	pos, err := parse(fs, args)
	if err != nil {
		return ExitError
	}
	if len(pos) != 0 {
		return c.usageError(c.Help(), "bench takes no arguments, got %q", pos)
	}
	if cfg.Mode, err = bench.ParseMode(mode); err != nil {
		return c.usageError(c.Help(), "-mode=%q: want steady or burndown", mode)
	}
	for _, a := range addrs {
		for _, s := range strings.Split(a, ",") {
			if s = strings.TrimSpace(s); s != "" {
				cfg.Addresses = append(cfg.Addresses, s)
			}
		}
	}
	if cfg.Local == 0 && len(cfg.Addresses) == 0 {
		if env := c.Getenv(EnvAddress); env != "" {
			cfg.Addresses = []string{env}
		}
	}
	cfg.Token = c.token
	if cfg.Token == "" {
		cfg.Token = c.Getenv(EnvToken)
	}
	if err := cfg.Validate(); err != nil {
		return c.usageError(c.Help(), "%s", strings.TrimPrefix(err.Error(), bench.ErrInvalidConfig.Error()+": "))
	}
	if c.Interactive {
		cfg.Progress = c.Stderr
	}
	logger := hclog.New(&hclog.LoggerOptions{Name: "bench", Level: hclog.Info, Output: c.Stderr})

	ctx, stop := c.context()
	defer stop()
	started := time.Now()
	res, err := bench.Run(ctx, cfg, logger)
	if err != nil {
		// A start failure carries the agents' log tails on the lines after
		// the first; print them whole.
		first, rest, _ := strings.Cut(err.Error(), "\n")
		c.fail(fmt.Errorf("bench: %s", first))
		if rest != "" {
			fmt.Fprintln(c.Stderr, rest)
		}
		return ExitError
	}
	logger.Debug("bench finished", "wall", time.Since(started))
	if c.json {
		enc := json.NewEncoder(c.Stdout)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(res.Map()); err != nil {
			return c.fail(fmt.Errorf("write output: %w", err))
		}
		return ExitOK
	}
	fmt.Fprintln(c.Stdout, res.Line())
	return ExitOK
}
