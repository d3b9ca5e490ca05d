package command

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// JobPlanCommand is `corral job plan`.
type JobPlanCommand struct {
	Meta
}

// Synopsis implements cli.Command.
func (c *JobPlanCommand) Synopsis() string {
	return "Show which nodes could run a job and what holds it back, without submitting it"
}

// Help implements cli.Command.
func (c *JobPlanCommand) Help() string {
	return strings.TrimSpace(`
Usage: corral job plan [options] PLUGIN [PAYLOAD | @FILE | -]

  Show what would happen to the job if it were submitted now, without
  submitting it: for every node whether it could run the job or why not
  (plugin missing, a constraint not met, node failed), what in its queue
  holds it back (paused, concurrency cap, rate limit) and how many queued
  jobs would go before it. It needs the permission a submit needs.

Job options (as for job submit):
` + jobFlagsHelp + `
` + clientFlagsHelp)
}

// Run implements cli.Command.
func (c *JobPlanCommand) Run(args []string) int {
	var jf jobFlags
	fs := c.flagSet("job plan", true, c.Help)
	jf.register(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return ExitError
	}
	req, code, ok := jf.request(&c.Meta, c.Help(), pos)
	if !ok {
		return code
	}
	client, err := c.client()
	if err != nil {
		return c.fail(err)
	}
	ctx, stop := c.context()
	defer stop()
	plan, err := client.PlanJob(ctx, req)
	if err != nil {
		return c.fail(err)
	}
	return c.output(plan, func(w io.Writer) {
		verdict := "could run now"
		if !plan.RunnableNow {
			verdict = "would wait"
		}
		fmt.Fprintf(w, "Job of plugin %s in queue %s: %s\n", plan.Plugin, plan.Queue, verdict)
		if !plan.RunAt.IsZero() {
			fmt.Fprintf(w, "Run at:    %s\n", plan.RunAt.Format(time.RFC3339))
		}
		fmt.Fprintf(w, "Ahead:     %d queued jobs of the same or a higher priority (%d of plugin %s)\n", plan.Ahead, plan.AheadSamePlugin, plan.Plugin)
		for _, r := range plan.Reasons {
			fmt.Fprintf(w, "Held back: %s\n", r)
		}
		fmt.Fprintln(w)
		rows := make([][]string, len(plan.Nodes))
		for i, n := range plan.Nodes {
			can := "yes"
			if !n.Eligible {
				can = "no"
			}
			rows[i] = []string{n.Node, can, n.Reason}
		}
		table(w, []string{"Node", "Eligible", "Reason"}, rows)
		for _, warn := range plan.Warnings {
			fmt.Fprintf(c.Stderr, "warning: %s\n", warn)
		}
	})
}
