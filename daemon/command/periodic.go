package command

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/corral-dev/corral/daemon/api"
)

const periodicHelp = `
Usage: corral periodic <subcommand> [options] [args]

  Jobs submitted on a cron schedule. The leader fires each tick exactly
  once, also across a leader change. Periodic jobs come from periodic
  blocks of the agent config or from "corral periodic apply".
`

// PeriodicListCommand is `corral periodic list`.
type PeriodicListCommand struct {
	Meta
}

// Synopsis implements cli.Command.
func (c *PeriodicListCommand) Synopsis() string { return "List periodic jobs and their next run" }

// Help implements cli.Command.
func (c *PeriodicListCommand) Help() string {
	return strings.TrimSpace(`
Usage: corral periodic list [options]

  List the periodic jobs: schedule, plugin, queue, the next run, the last
  tick fired and the job it made.
` + clientFlagsHelp)
}

// Run implements cli.Command.
func (c *PeriodicListCommand) Run(args []string) int {
	fs := c.flagSet("periodic list", true, c.Help)
	return c.runClient(fs, c.Help(), args, nil, func(ctx context.Context, client *api.Client, _ []string) int {
		list, err := client.Periodics(ctx)
		if err != nil {
			return c.fail(err)
		}
		return c.output(list, func(w io.Writer) {
			if len(list.Periodics) == 0 {
				fmt.Fprintln(w, "No periodic jobs")
				return
			}
			rows := make([][]string, len(list.Periodics))
			for i, p := range list.Periodics {
				sched := p.Cron
				if p.Timezone != "" {
					sched += " (" + p.Timezone + ")"
				}
				rows[i] = []string{p.Name, sched, p.Job.Plugin, p.Job.Queue, p.Overlap, strconv.FormatBool(p.CatchUp),
					orDash(when(p.Next)), orDash(p.LastJob), strconv.FormatUint(p.Fired, 10), strconv.FormatUint(p.Skipped, 10)}
			}
			table(w, []string{"Name", "Schedule", "Plugin", "Queue", "Overlap", "Catch Up", "Next Run", "Last Job", "Fired", "Skipped"}, rows)
		})
	})
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// PeriodicApplyCommand is `corral periodic apply`.
type PeriodicApplyCommand struct {
	Meta
}

// Synopsis implements cli.Command.
func (c *PeriodicApplyCommand) Synopsis() string { return "Create or replace a periodic job" }

// Help implements cli.Command.
func (c *PeriodicApplyCommand) Help() string {
	return strings.TrimSpace(`
Usage: corral periodic apply -cron=<spec> [options] NAME PLUGIN [PAYLOAD | @FILE | -]

  Create the periodic job NAME, or replace it (a replaced one keeps the
  last tick it fired, so no tick fires twice). Each tick submits a job
  that PLUGIN runs with PAYLOAD.

Schedule options:

  -cron=<spec>           Five cron fields ("*/5 * * * *"), six with leading
                         seconds ("*/10 * * * * *"), or "@hourly", "@every 1m". Required.
  -timezone=<zone>       IANA zone the schedule is read in ("Europe/Berlin"). Default: UTC.
  -overlap=<skip|allow>  skip: no new job while the last one has not
                         finished. Default: skip.
  -catch-up              Fire every tick missed while the cluster had no
                         leader, in order. Default: only the latest one.

Job options:

  -queue=<name>          Queue for the jobs. Default: "default".
  -priority=<n>          Priority of the jobs. Default: 0.
  -max-attempts=<n>      Attempts of each job. Default: the queue's.
  -timeout=<duration>    Time limit of one attempt ("5m"). Default: 30m.
  -constraint=<k=v>      A node tag the executing node must have; repeatable.
` + clientFlagsHelp)
}

// Run implements cli.Command.
func (c *PeriodicApplyCommand) Run(args []string) int {
	var (
		req         api.PeriodicRequest
		timeout     time.Duration
		constraints kvFlag
	)
	fs := c.flagSet("periodic apply", true, c.Help)
	fs.StringVar(&req.Cron, "cron", "", "")
	fs.StringVar(&req.Timezone, "timezone", "", "")
	fs.StringVar(&req.Overlap, "overlap", "skip", "")
	fs.BoolVar(&req.CatchUp, "catch-up", false, "")
	fs.StringVar(&req.Job.Queue, "queue", "", "")
	fs.IntVar(&req.Job.Priority, "priority", 0, "")
	fs.IntVar(&req.Job.MaxAttempts, "max-attempts", 0, "")
	fs.DurationVar(&timeout, "timeout", 0, "")
	fs.Var(&constraints, "constraint", "")
	pos, err := parse(fs, args)
	if err != nil {
		return ExitError
	}
	if len(pos) < 2 || len(pos) > 3 {
		return c.usageError(c.Help(), "expected NAME PLUGIN and an optional PAYLOAD, got %d argument(s)", len(pos))
	}
	if req.Cron == "" {
		return c.usageError(c.Help(), "-cron is required, e.g. -cron='*/5 * * * *'")
	}
	req.Job.Plugin = pos[1]
	req.Job.Timeout = api.Duration(timeout)
	if len(constraints) > 0 {
		req.Job.Constraints = constraints
	}
	if len(pos) == 3 {
		payload, err := readPayload(&c.Meta, pos[2])
		if err != nil {
			return c.fail(err)
		}
		req.Job.Payload = payload
	}
	client, err := c.client()
	if err != nil {
		return c.fail(err)
	}
	ctx, stop := c.context()
	defer stop()
	p, err := client.ApplyPeriodic(ctx, pos[0], req)
	if err != nil {
		return c.fail(err)
	}
	return c.output(p, func(w io.Writer) {
		fmt.Fprintf(w, "periodic job %s applied; next run %s\n", p.Name, orDash(when(p.Next)))
	})
}

// PeriodicDeleteCommand is `corral periodic delete`.
type PeriodicDeleteCommand struct {
	Meta
}

// Synopsis implements cli.Command.
func (c *PeriodicDeleteCommand) Synopsis() string { return "Delete a periodic job" }

// Help implements cli.Command.
func (c *PeriodicDeleteCommand) Help() string {
	return strings.TrimSpace(`
Usage: corral periodic delete [options] NAME

  Delete the periodic job NAME. Jobs it already made stay. A periodic
  block in an agent config comes back when a new leader is elected:
  remove it from the config too.
` + clientFlagsHelp)
}

// Run implements cli.Command.
func (c *PeriodicDeleteCommand) Run(args []string) int {
	fs := c.flagSet("periodic delete", true, c.Help)
	return c.runClient(fs, c.Help(), args, []string{"NAME"}, func(ctx context.Context, client *api.Client, pos []string) int {
		if err := client.DeletePeriodic(ctx, pos[0]); err != nil {
			return c.fail(err)
		}
		return c.output(map[string]string{"deleted": pos[0]}, func(w io.Writer) {
			fmt.Fprintf(w, "periodic job %s deleted\n", pos[0])
		})
	})
}

// PeriodicRunCommand is `corral periodic run-now`.
type PeriodicRunCommand struct {
	Meta
}

// Synopsis implements cli.Command.
func (c *PeriodicRunCommand) Synopsis() string { return "Submit a periodic job's job now" }

// Help implements cli.Command.
func (c *PeriodicRunCommand) Help() string {
	return strings.TrimSpace(`
Usage: corral periodic run-now [options] NAME

  Submit the job of periodic job NAME now, outside its schedule, and print
  its ID. The schedule is not moved and the overlap policy does not apply.
` + clientFlagsHelp)
}

// Run implements cli.Command.
func (c *PeriodicRunCommand) Run(args []string) int {
	fs := c.flagSet("periodic run-now", true, c.Help)
	return c.runClient(fs, c.Help(), args, []string{"NAME"}, func(ctx context.Context, client *api.Client, pos []string) int {
		run, err := client.RunPeriodic(ctx, pos[0])
		if err != nil {
			return c.fail(err)
		}
		return c.output(run, func(w io.Writer) { fmt.Fprintln(w, run.ID) })
	})
}
