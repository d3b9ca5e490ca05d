package command

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/corral-dev/corral/daemon/api"
)

// bulkFlagsHelp documents the filter flags of job retry and job cancel.
const bulkFlagsHelp = `
  -queue=<name>
    Only jobs of this queue.

  -plugin=<name>
    Only jobs of this plugin.

  -older-than=<duration>
    Only jobs created longer ago than this (the Age column of job list),
    such as 1h.

  -dry-run
    Print how many jobs match and change nothing.

  -yes
    Do not ask for confirmation. Without it the command counts the
    matching jobs and asks on a terminal; without a terminal it refuses.
`

// bulkFlags are the filter flags of job retry and job cancel.
type bulkFlags struct {
	queue, state, plugin string
	olderThan            time.Duration
	yes, dryRun          bool
}

func (b *bulkFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&b.queue, "queue", "", "")
	fs.StringVar(&b.state, "state", "", "")
	fs.StringVar(&b.plugin, "plugin", "", "")
	fs.DurationVar(&b.olderThan, "older-than", 0, "")
	fs.BoolVar(&b.yes, "yes", false, "")
	fs.BoolVar(&b.dryRun, "dry-run", false, "")
}

// filtered reports whether any filter flag is set.
func (b *bulkFlags) filtered() bool {
	return b.queue != "" || b.state != "" || b.plugin != "" || b.olderThan != 0
}

// bulkOp is what differs between a bulk retry and a bulk cancel.
type bulkOp struct {
	verb, past string // "retry", "retried"
	call       func(ctx context.Context, client *api.Client, req api.BulkRequest) (*api.BulkResult, error)
}

var (
	bulkRetryOp = bulkOp{"retry", "retried", func(ctx context.Context, client *api.Client, req api.BulkRequest) (*api.BulkResult, error) {
		return client.BulkRetry(ctx, req)
	}}
	bulkCancelOp = bulkOp{"cancel", "cancelled", func(ctx context.Context, client *api.Client, req api.BulkRequest) (*api.BulkResult, error) {
		return client.BulkCancel(ctx, req)
	}}
)

// runSingleOrBulk runs job retry or job cancel: with an ID argument, the
// single-job form (single); with filter flags, the bulk form.
func (m *Meta) runSingleOrBulk(fs *flag.FlagSet, help string, args []string, b *bulkFlags, op bulkOp,
	single func(ctx context.Context, client *api.Client, id string) int) int {
	pos, err := parse(fs, args)
	if err != nil {
		return ExitError
	}
	switch {
	case len(pos) > 1:
		return m.usageError(help, "expected one job ID, got %d arguments", len(pos))
	case len(pos) == 1 && (b.filtered() || b.yes || b.dryRun):
		return m.usageError(help, "give either a job ID or filter flags (-queue, -state, -plugin, -older-than), not both")
	case len(pos) == 0 && !b.filtered():
		return m.usageError(help, "expected a job ID or filter flags (-queue, -state, -plugin, -older-than)")
	case b.olderThan < 0:
		return m.usageError(help, "-older-than=%s must not be negative", b.olderThan)
	}
	client, err := m.client()
	if err != nil {
		return m.fail(err)
	}
	ctx, stop := m.context()
	defer stop()
	if len(pos) == 1 {
		return single(ctx, client, pos[0])
	}
	return m.bulk(ctx, client, b, op)
}

// bulk runs a bulk retry or cancel: a dry run first unless -yes, and a
// confirmation on a terminal.
func (m *Meta) bulk(ctx context.Context, client *api.Client, b *bulkFlags, op bulkOp) int {
	req := api.BulkRequest{Queue: b.queue, State: b.state, Plugin: b.plugin, OlderThan: api.Duration(b.olderThan)}
	if b.dryRun || !b.yes {
		req.DryRun = true
		res, err := op.call(ctx, client, req)
		if err != nil {
			return m.fail(err)
		}
		switch {
		case b.dryRun:
			return m.output(res, func(w io.Writer) {
				fmt.Fprintf(w, "%s match (dry run: nothing %s)\n", jobsCount(res.Count), op.past)
			})
		case res.Count == 0:
			return m.output(res, func(w io.Writer) { fmt.Fprintf(w, "No jobs match; nothing to %s\n", op.verb) })
		case !m.StdinTerminal:
			fmt.Fprintf(m.Stderr, "error: %s %s needs confirmation, and stdin is not a terminal: pass -yes\n", op.verb, jobsCount(res.Count))
			return ExitError
		}
		fmt.Fprintf(m.Stderr, "%s%s %s? [y/N] ", strings.ToUpper(op.verb[:1]), op.verb[1:], jobsCount(res.Count))
		answer, _ := bufio.NewReader(m.Stdin).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
			fmt.Fprintf(m.Stderr, "error: not confirmed; nothing %s\n", op.past)
			return ExitError
		}
		req.DryRun = false
	}
	res, err := op.call(ctx, client, req)
	if err != nil {
		return m.fail(err)
	}
	return m.output(res, func(w io.Writer) {
		entries := "raft entries"
		if res.Entries == 1 {
			entries = "raft entry"
		}
		fmt.Fprintf(w, "%s%s %s (%d %s)\n", strings.ToUpper(op.past[:1]), op.past[1:], jobsCount(res.Count), res.Entries, entries)
	})
}

// jobsCount says "1 job" or "N jobs".
func jobsCount(n int) string {
	if n == 1 {
		return "1 job"
	}
	return fmt.Sprintf("%d jobs", n)
}
