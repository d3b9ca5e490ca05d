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

// JobStatusCommand is `corral job status`.
type JobStatusCommand struct {
	Meta
}

// Synopsis implements cli.Command.
func (c *JobStatusCommand) Synopsis() string { return "Show a job and its attempts" }

// Help implements cli.Command.
func (c *JobStatusCommand) Help() string {
	return strings.TrimSpace(`
Usage: corral job status [options] ID

  Show a job: its settings, state, progress, why it is waiting, its result
  or error, and one line per attempt.
` + clientFlagsHelp)
}

// Run implements cli.Command.
func (c *JobStatusCommand) Run(args []string) int {
	fs := c.flagSet("job status", true, c.Help)
	return c.runClient(fs, c.Help(), args, []string{"ID"}, func(ctx context.Context, client *api.Client, pos []string) int {
		job, err := client.Job(ctx, pos[0])
		if err != nil {
			return c.fail(err)
		}
		var deps [][]string
		if !c.json {
			deps = dependencyRows(ctx, client, job)
		}
		return c.output(job, func(w io.Writer) {
			printJob(w, job)
			if len(deps) > 0 {
				fmt.Fprintln(w, "\nDependencies")
				table(w, []string{"Relation", "ID", "State", "Error"}, deps)
			}
		})
	})
}

// maxDependencyRows bounds the parents and the children job status looks
// up and shows (each).
const maxDependencyRows = 20

// dependencyRows looks up the state of a job's parents and children, one
// row each (at most maxDependencyRows of either, then a count of the
// rest). A job that cannot be read shows why instead of its state.
func dependencyRows(ctx context.Context, client *api.Client, j *api.Job) [][]string {
	var rows [][]string
	add := func(rel string, ids []string) {
		for i, id := range ids {
			if i == maxDependencyRows {
				rows = append(rows, []string{rel, fmt.Sprintf("... and %d more", len(ids)-i), "", ""})
				return
			}
			state, msg := "-", ""
			if d, err := client.Job(ctx, id); err != nil {
				msg = oneLine(err.Error())
			} else {
				state, msg = d.State, oneLine(d.Error)
			}
			rows = append(rows, []string{rel, id, state, dash(msg)})
		}
	}
	add("parent", j.Parents)
	add("child", j.Children)
	return rows
}

// printJob writes the human view of one job.
func printJob(w io.Writer, j *api.Job) {
	attempt := fmt.Sprintf("%d/%d", j.Attempt, j.MaxAttempts)
	var progress string
	if j.Progress != nil {
		progress = strings.TrimSpace(fmt.Sprintf("%.0f%% %s", j.Progress.Percent, j.Progress.Message))
	}
	var runAt string
	if j.State == "scheduled" || !j.RunAt.IsZero() && j.RunAt.After(j.CreatedAt) {
		runAt = when(j.RunAt)
	}
	var unique string
	if j.UniqueKey != "" {
		unique = j.UniqueKey
		if j.UniqueFor > 0 {
			unique += fmt.Sprintf(" (for %s)", time.Duration(j.UniqueFor))
		}
	}
	state := j.State
	if j.CancelRequested && !terminal(j.State) {
		state += " (cancel requested)"
	}
	fields(w, []field{
		{"ID", j.ID},
		{"Queue", j.Queue},
		{"Plugin", j.Plugin},
		{"State", state},
		{"Waiting", j.Waiting},
		{"Progress", progress},
		{"Attempt", attempt},
		{"Node", j.Node},
		{"Priority", strconv.Itoa(j.Priority)},
		{"Timeout", time.Duration(j.Timeout).String()},
		{"Run At", runAt},
		{"Unique Key", unique},
		{"Constraints", pairs(j.Constraints, ", ")},
		{"Lease Expires", when(j.LeaseExpiresAt)},
		{"Created", when(j.CreatedAt)},
		{"Updated", when(j.UpdatedAt)},
		{"Finished", when(j.FinishedAt)},
		{"Payload", string(j.Payload)},
		{"Result", string(j.Result)},
		{"Error", oneLine(j.Error)},
	})
	if len(j.Attempts) == 0 {
		return
	}
	fmt.Fprintln(w, "\nAttempts")
	rows := make([][]string, len(j.Attempts))
	for i, a := range j.Attempts {
		took := "-"
		if !a.Finished.IsZero() {
			took = short(a.Finished.Sub(a.Started))
		} else if !a.Started.IsZero() {
			took = short(time.Since(a.Started)) + " so far"
		}
		outcome := a.Outcome
		if outcome == "" && a.Finished.IsZero() {
			outcome = "running"
		}
		rows[i] = []string{strconv.Itoa(a.Attempt), dash(a.Node), a.Started.Local().Format(time.RFC3339), took, dash(outcome), dash(oneLine(a.Error))}
	}
	table(w, []string{"#", "Node", "Started", "Duration", "Outcome", "Error"}, rows)
}

// JobListCommand is `corral job list`.
type JobListCommand struct {
	Meta
}

// Synopsis implements cli.Command.
func (c *JobListCommand) Synopsis() string { return "List jobs" }

// Help implements cli.Command.
func (c *JobListCommand) Help() string {
	return strings.TrimSpace(`
Usage: corral job list [options]

  List jobs, optionally only those of one queue or in one state.

Options:

  -queue=<name>
    Only jobs of this queue.

  -state=<state>
    Only jobs in this state: blocked, scheduled, queued, running, succeeded, failed
    or cancelled.
` + clientFlagsHelp)
}

// Run implements cli.Command.
func (c *JobListCommand) Run(args []string) int {
	var queue, state string
	fs := c.flagSet("job list", true, c.Help)
	fs.StringVar(&queue, "queue", "", "")
	fs.StringVar(&state, "state", "", "")
	return c.runClient(fs, c.Help(), args, nil, func(ctx context.Context, client *api.Client, _ []string) int {
		list, err := client.Jobs(ctx, queue, state)
		if err != nil {
			return c.fail(err)
		}
		return c.output(list, func(w io.Writer) {
			if len(list.Jobs) == 0 {
				fmt.Fprintln(w, "No jobs")
				return
			}
			rows := make([][]string, len(list.Jobs))
			for i, j := range list.Jobs {
				rows[i] = []string{j.ID, j.Queue, j.Plugin, j.State,
					fmt.Sprintf("%d/%d", j.Attempt, j.MaxAttempts), dash(j.Node), age(j.CreatedAt)}
			}
			table(w, []string{"ID", "Queue", "Plugin", "State", "Attempt", "Node", "Age"}, rows)
		})
	})
}
