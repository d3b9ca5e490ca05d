package command

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/corral-dev/corral/daemon/api"
)

// JobCancelCommand is `corral job cancel`.
type JobCancelCommand struct {
	Meta
}

// Synopsis implements cli.Command.
func (c *JobCancelCommand) Synopsis() string { return "Cancel a job, or every job matching filters" }

// Help implements cli.Command.
func (c *JobCancelCommand) Help() string {
	return strings.TrimSpace(`
Usage: corral job cancel [options] (ID | -queue Q | -state S | -plugin P | -older-than D)

  Cancel a job. A job that has not started is cancelled at once; a running
  job's plugin call is cancelled on its node, then the job ends cancelled.

  With filter flags instead of an ID, cancel every blocked, scheduled, queued or
  running job that matches them all, in batches of 500 jobs per raft
  entry, and print how many were cancelled.

Options:

  -state=<state>
    Only jobs in this state: blocked, scheduled, queued or running.
` + bulkFlagsHelp + clientFlagsHelp)
}

// Run implements cli.Command.
func (c *JobCancelCommand) Run(args []string) int {
	var b bulkFlags
	fs := c.flagSet("job cancel", true, c.Help)
	b.register(fs)
	return c.runSingleOrBulk(fs, c.Help(), args, &b, bulkCancelOp, func(ctx context.Context, client *api.Client, id string) int {
		j, err := client.Cancel(ctx, id)
		if errors.Is(err, api.ErrConflict) {
			// Already finished: say so plainly, with the outcome.
			if cur, gerr := client.Job(ctx, id); gerr == nil && terminal(cur.State) {
				fmt.Fprintf(c.Stderr, "Job %s already %s; there is nothing to cancel.\n", cur.ID, cur.State)
				return ExitError
			}
		}
		if err != nil {
			return c.fail(err)
		}
		return c.output(j, func(w io.Writer) {
			if j.State == "cancelled" {
				fmt.Fprintf(w, "Job %s cancelled\n", j.ID)
				return
			}
			fmt.Fprintf(w, "Job %s is %s; cancellation requested (follow it with `corral job wait %s`)\n", j.ID, j.State, j.ID)
		})
	})
}

// JobRetryCommand is `corral job retry`.
type JobRetryCommand struct {
	Meta
}

// Synopsis implements cli.Command.
func (c *JobRetryCommand) Synopsis() string {
	return "Queue a failed job again, or every job matching filters"
}

// Help implements cli.Command.
func (c *JobRetryCommand) Help() string {
	return strings.TrimSpace(`
Usage: corral job retry [options] (ID | -queue Q | -state S | -plugin P | -older-than D)

  Put a failed or cancelled job back in its queue, with one more attempt.

  With filter flags instead of an ID, retry every failed or cancelled job
  that matches them all, in batches of 500 jobs per raft entry, and print
  how many were retried. Jobs that fail again while it runs are not
  retried twice.

Options:

  -state=<state>
    Only jobs in this state: failed or cancelled.
` + bulkFlagsHelp + clientFlagsHelp)
}

// Run implements cli.Command.
func (c *JobRetryCommand) Run(args []string) int {
	var b bulkFlags
	fs := c.flagSet("job retry", true, c.Help)
	b.register(fs)
	return c.runSingleOrBulk(fs, c.Help(), args, &b, bulkRetryOp, func(ctx context.Context, client *api.Client, id string) int {
		j, err := client.Retry(ctx, id)
		if err != nil {
			return c.fail(err)
		}
		return c.output(j, func(w io.Writer) { fmt.Fprintf(w, "Job %s is %s again\n", j.ID, j.State) })
	})
}

// JobLogsCommand is `corral job logs`.
type JobLogsCommand struct {
	Meta
}

// Synopsis implements cli.Command.
func (c *JobLogsCommand) Synopsis() string { return "Print a job's output" }

// Help implements cli.Command.
func (c *JobLogsCommand) Help() string {
	return strings.TrimSpace(`
Usage: corral job logs [options] ID

  Print the output of a job attempt. The log is kept on the node that ran
  the attempt and is fetched through any node.

Options:

  -f
    Follow the log while the attempt runs.

  -attempt=<n>
    Which attempt (1 is the first). Default: the latest.
` + clientFlagsHelp)
}

// Run implements cli.Command.
func (c *JobLogsCommand) Run(args []string) int {
	var followLog bool
	var attempt int
	fs := c.flagSet("job logs", true, c.Help)
	fs.BoolVar(&followLog, "f", false, "")
	fs.IntVar(&attempt, "attempt", 0, "")
	return c.runClient(fs, c.Help(), args, []string{"ID"}, func(ctx context.Context, client *api.Client, pos []string) int {
		if attempt < 0 {
			return c.usageError(c.Help(), "-attempt must be 1 or more")
		}
		rc, err := client.Logs(ctx, pos[0], attempt, followLog)
		if err != nil {
			return c.fail(err)
		}
		defer rc.Close()
		if _, err := io.Copy(c.Stdout, rc); err != nil && ctx.Err() == nil {
			return c.fail(fmt.Errorf("read log: %w", err))
		}
		return ExitOK
	})
}
