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

// countStates are the per-state counts shown by `queue list`, in order.
var countStates = []string{"blocked", "scheduled", "queued", "running", "succeeded", "failed", "cancelled"}

// QueueListCommand is `corral queue list`.
type QueueListCommand struct {
	Meta
}

// Synopsis implements cli.Command.
func (c *QueueListCommand) Synopsis() string { return "List queues and their job counts" }

// Help implements cli.Command.
func (c *QueueListCommand) Help() string {
	return strings.TrimSpace(`
Usage: corral queue list [options]

  List the queues with their settings and how many jobs each holds per
  state. Queues are created on first use.
` + clientFlagsHelp)
}

// Run implements cli.Command.
func (c *QueueListCommand) Run(args []string) int {
	fs := c.flagSet("queue list", true, c.Help)
	return c.runClient(fs, c.Help(), args, nil, func(ctx context.Context, client *api.Client, _ []string) int {
		list, err := client.Queues(ctx)
		if err != nil {
			return c.fail(err)
		}
		return c.output(list, func(w io.Writer) {
			if len(list.Queues) == 0 {
				fmt.Fprintln(w, "No queues")
				return
			}
			header := []string{"Name", "Paused", "Concurrency", "Rate", "Max Attempts", "Retention"}
			for _, s := range countStates {
				header = append(header, strings.ToUpper(s[:1])+s[1:])
			}
			rows := make([][]string, len(list.Queues))
			for i, q := range list.Queues {
				conc := "unlimited"
				if q.Concurrency > 0 {
					conc = strconv.Itoa(q.Concurrency)
				}
				rate := "unlimited"
				if q.Rate != "" {
					rate = fmt.Sprintf("%s burst %d", q.Rate, q.Burst)
					if q.Tokens != nil {
						rate += fmt.Sprintf(" (%.1f tokens)", *q.Tokens)
					}
				}
				row := []string{q.Name, strconv.FormatBool(q.Paused), conc, rate, strconv.Itoa(q.MaxAttempts), time.Duration(q.Retention).String()}
				for _, s := range countStates {
					row = append(row, strconv.Itoa(q.Counts[s]))
				}
				rows[i] = row
			}
			table(w, header, rows)
		})
	})
}

// QueuePauseCommand is `corral queue pause` (pause true) and
// `corral queue resume`.
type QueuePauseCommand struct {
	Meta
	pause bool
}

func (c *QueuePauseCommand) verb() string {
	if c.pause {
		return "pause"
	}
	return "resume"
}

// Synopsis implements cli.Command.
func (c *QueuePauseCommand) Synopsis() string {
	if c.pause {
		return "Stop dispatching jobs from a queue"
	}
	return "Resume dispatching jobs from a queue"
}

// Help implements cli.Command.
func (c *QueuePauseCommand) Help() string {
	text := `
Usage: corral queue pause [options] QUEUE

  Stop dispatching jobs from QUEUE. Running jobs finish; new jobs are still
  accepted and wait until the queue is resumed.
`
	if !c.pause {
		text = `
Usage: corral queue resume [options] QUEUE

  Resume dispatching jobs from a paused QUEUE.
`
	}
	return strings.TrimSpace(text + clientFlagsHelp)
}

// Run implements cli.Command.
func (c *QueuePauseCommand) Run(args []string) int {
	fs := c.flagSet("queue "+c.verb(), true, c.Help)
	return c.runClient(fs, c.Help(), args, []string{"QUEUE"}, func(ctx context.Context, client *api.Client, pos []string) int {
		name := pos[0]
		var err error
		if c.pause {
			err = client.PauseQueue(ctx, name)
		} else {
			err = client.ResumeQueue(ctx, name)
		}
		if err != nil {
			return c.fail(err)
		}
		out := struct {
			Name   string `json:"name"`
			Paused bool   `json:"paused"`
		}{name, c.pause}
		return c.output(out, func(w io.Writer) { fmt.Fprintf(w, "Queue %s %sd\n", name, c.verb()) })
	})
}

// QueueSetCommand is `corral queue set`.
type QueueSetCommand struct {
	Meta
}

// Synopsis implements cli.Command.
func (c *QueueSetCommand) Synopsis() string { return "Change a queue's settings (rate limit)" }

// Help implements cli.Command.
func (c *QueueSetCommand) Help() string {
	return strings.TrimSpace(`
Usage: corral queue set [options] QUEUE

  Change a queue's settings at run time. A queue block in the agents'
  configuration that sets the same setting wins again when a new leader
  takes over.

Queue options:

  -rate=<N/unit>   Hand out at most N jobs per second, minute or hour
                   cluster-wide: 100/s, 30/m, 5/h. 0 removes the limit.
  -burst=<n>       How many jobs may go at once under -rate. Default: 1.
` + clientFlagsHelp)
}

// Run implements cli.Command.
func (c *QueueSetCommand) Run(args []string) int {
	var (
		rate  string
		burst int64
	)
	fs := c.flagSet("queue set", true, c.Help)
	fs.StringVar(&rate, "rate", "", "")
	fs.Int64Var(&burst, "burst", 0, "")
	return c.runClient(fs, c.Help(), args, []string{"QUEUE"}, func(ctx context.Context, client *api.Client, pos []string) int {
		if rate == "" {
			return c.usageError(c.Help(), "nothing to set: give -rate (such as -rate 100/s -burst 20, or -rate 0 to remove the limit)")
		}
		q, err := client.SetQueueRate(ctx, pos[0], api.QueueRate{Rate: rate, Burst: burst})
		if err != nil {
			return c.fail(err)
		}
		return c.output(q, func(w io.Writer) {
			if q.Rate == "" {
				fmt.Fprintf(w, "Queue %s has no rate limit\n", q.Name)
				return
			}
			fmt.Fprintf(w, "Queue %s rate limited to %s, burst %d\n", q.Name, q.Rate, q.Burst)
		})
	})
}

// QueueDeleteCommand is `corral queue delete`.
type QueueDeleteCommand struct {
	Meta
}

// Synopsis implements cli.Command.
func (c *QueueDeleteCommand) Synopsis() string { return "Delete a queue that holds no jobs" }

// Help implements cli.Command.
func (c *QueueDeleteCommand) Help() string {
	return strings.TrimSpace(`
Usage: corral queue delete [options] QUEUE

  Delete QUEUE with its settings (pause, concurrency, retention), so a
  queue made by a typo goes away. Only a queue that holds no jobs at all
  can be deleted: cancel its unfinished jobs, and its finished ones are
  purged after the queue's retention. A later submit to the name makes
  the queue again, with default settings; a queue block in an agent's
  config makes it again when that agent next becomes leader.
` + clientFlagsHelp)
}

// Run implements cli.Command.
func (c *QueueDeleteCommand) Run(args []string) int {
	fs := c.flagSet("queue delete", true, c.Help)
	return c.runClient(fs, c.Help(), args, []string{"QUEUE"}, func(ctx context.Context, client *api.Client, pos []string) int {
		if err := client.DeleteQueue(ctx, pos[0]); err != nil {
			return c.fail(err)
		}
		out := struct {
			Deleted string `json:"deleted"`
		}{pos[0]}
		return c.output(out, func(w io.Writer) { fmt.Fprintf(w, "Queue %s deleted\n", pos[0]) })
	})
}
