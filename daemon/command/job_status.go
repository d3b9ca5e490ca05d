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

const (
	// defaultListLimit is how many jobs job list shows without -limit.
	defaultListLimit = 100
	// listPage is the most jobs job list asks for in one request.
	listPage = 1000
)

// Synopsis implements cli.Command.
func (c *JobListCommand) Synopsis() string { return "List jobs" }

// Help implements cli.Command.
func (c *JobListCommand) Help() string {
	return strings.TrimSpace(`
Usage: corral job list [options]

  List jobs, newest first, optionally only those of one queue, plugin or
  state, or created recently. Large lists are fetched page by page.

Options:

  -queue=<name>
    Only jobs of this queue.

  -state=<state>
    Only jobs in this state: blocked, scheduled, queued, running, succeeded, failed
    or cancelled.

  -plugin=<name>
    Only jobs of this plugin.

  -since=<duration>
    Only jobs created within this long, such as 1h.

  -limit=<n>
    Show at most n jobs (0: all). Default: 100.
` + clientFlagsHelp)
}

// Run implements cli.Command.
func (c *JobListCommand) Run(args []string) int {
	var q api.JobQuery
	var since time.Duration
	limit := defaultListLimit
	fs := c.flagSet("job list", true, c.Help)
	fs.StringVar(&q.Queue, "queue", "", "")
	fs.StringVar(&q.State, "state", "", "")
	fs.StringVar(&q.Plugin, "plugin", "", "")
	fs.DurationVar(&since, "since", 0, "")
	fs.IntVar(&limit, "limit", defaultListLimit, "")
	return c.runClient(fs, c.Help(), args, nil, func(ctx context.Context, client *api.Client, _ []string) int {
		switch {
		case limit < 0:
			return c.usageError(c.Help(), "-limit=%d must be 0 (all) or more", limit)
		case since < 0:
			return c.usageError(c.Help(), "-since=%s must not be negative", since)
		case since > 0:
			q.Since = time.Now().Add(-since) // once, so every page has the same bound
		}
		list, err := listJobs(ctx, client, q, limit)
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
				rows[i] = []string{j.ID, j.Queue, j.Plugin, j.State, strconv.Itoa(j.Priority),
					fmt.Sprintf("%d/%d", j.Attempt, j.MaxAttempts), dash(j.Node), age(j.CreatedAt)}
			}
			table(w, []string{"ID", "Queue", "Plugin", "State", "Priority", "Attempt", "Node", "Age"}, rows)
			if list.NextCursor != "" {
				of := "more"
				if list.Total != nil {
					of = fmt.Sprintf("%d matching", *list.Total)
				}
				fmt.Fprintf(w, "Showing the newest %d of %s jobs; -limit=N shows more, -limit=0 all\n", len(list.Jobs), of)
			}
		})
	})
}

// listJobs fetches pages of jobs until limit of them (0: all) are read.
// The answer's index, total and next_cursor are the first page's index
// and total and the last page's cursor.
func listJobs(ctx context.Context, client *api.Client, q api.JobQuery, limit int) (*api.JobList, error) {
	out := &api.JobList{Jobs: []api.Job{}}
	for first := true; ; first = false {
		q.Limit = listPage
		if limit > 0 {
			q.Limit = min(listPage, limit-len(out.Jobs))
		}
		page, err := client.JobsPage(ctx, q)
		if err != nil {
			return nil, err
		}
		if first {
			out.Index, out.Total = page.Index, page.Total
		}
		out.Jobs = append(out.Jobs, page.Jobs...)
		out.NextCursor = page.NextCursor
		if page.NextCursor == "" || (limit > 0 && len(out.Jobs) >= limit) {
			return out, nil
		}
		q.Cursor = page.NextCursor
	}
}
