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
var countStates = []string{"scheduled", "queued", "running", "succeeded", "failed", "cancelled"}

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
			header := []string{"Name", "Paused", "Concurrency", "Max Attempts", "Retention"}
			for _, s := range countStates {
				header = append(header, strings.ToUpper(s[:1])+s[1:])
			}
			rows := make([][]string, len(list.Queues))
			for i, q := range list.Queues {
				conc := "unlimited"
				if q.Concurrency > 0 {
					conc = strconv.Itoa(q.Concurrency)
				}
				row := []string{q.Name, strconv.FormatBool(q.Paused), conc, strconv.Itoa(q.MaxAttempts), time.Duration(q.Retention).String()}
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
