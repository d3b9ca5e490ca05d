package command

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/corral-dev/corral/daemon/api"
)

const (
	// maxBlockingWait is the longest ?wait= asked for in one call.
	maxBlockingWait = 5 * time.Minute
	// unavailableRetry is the pause before retrying a 503 during a wait
	// (e.g. a leader election).
	unavailableRetry = 500 * time.Millisecond
	// pollInterval paces a wait when the server sends no index.
	pollInterval = time.Second
	// progressRefresh is how often a running job's progress is redrawn.
	progressRefresh = time.Second
)

// JobWaitCommand is `corral job wait`.
type JobWaitCommand struct {
	Meta
}

// Synopsis implements cli.Command.
func (c *JobWaitCommand) Synopsis() string { return "Wait for a job to finish" }

// Help implements cli.Command.
func (c *JobWaitCommand) Help() string {
	return strings.TrimSpace(`
Usage: corral job wait [options] ID

  Wait until the job ends, showing its progress on a terminal, and exit
  with its outcome: 0 succeeded, 2 failed, 3 cancelled, 4 timed out
  waiting (the job itself keeps going). Uses blocking queries, not polling.

Options:

  -timeout=<duration>
    Give up waiting after this long. Default: wait as long as it takes.
` + clientFlagsHelp)
}

// Run implements cli.Command.
func (c *JobWaitCommand) Run(args []string) int {
	var timeout time.Duration
	fs := c.flagSet("job wait", true, c.Help)
	fs.DurationVar(&timeout, "timeout", 0, "")
	pos, err := parse(fs, args)
	if err != nil {
		return ExitError
	}
	if len(pos) != 1 {
		return c.usageError(c.Help(), "expected one argument, the job ID, got %d", len(pos))
	}
	if timeout < 0 {
		return c.usageError(c.Help(), "-timeout must not be negative")
	}
	client, err := c.client()
	if err != nil {
		return c.fail(err)
	}
	ctx, stop := c.context()
	defer stop()
	return follow(ctx, &c.Meta, client, pos[0], timeout)
}

// terminal reports whether a job state is final.
func terminal(state string) bool {
	return state == "succeeded" || state == "failed" || state == "cancelled"
}

// follow waits for job id to end with blocking queries, drawing progress
// when interactive, prints the outcome and returns its exit code. timeout
// 0 waits forever.
func follow(ctx context.Context, m *Meta, client *api.Client, id string, timeout time.Duration) int {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	p := progressLine{m: m}
	defer p.clear()
	if m.Interactive {
		fmt.Fprintf(m.Stderr, "Waiting for job %s to finish (Ctrl-C stops waiting; the job keeps going)\n", id)
	}
	var (
		job   *api.Job
		index uint64
	)
	for {
		wait := maxBlockingWait
		if m.Interactive && job != nil && job.State == "running" {
			// Progress is not replicated: no index moves when it
			// changes, so a running job is re-read every second.
			wait = progressRefresh
		}
		if dl, ok := ctx.Deadline(); ok {
			wait = min(wait, max(time.Until(dl), time.Millisecond))
		}
		j, next, err := client.WaitJob(ctx, id, index, wait)
		switch {
		case errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil:
			p.clear()
			state := "unknown"
			if job != nil {
				state = job.State
			}
			fmt.Fprintf(m.Stderr, "error: timed out after %s waiting for job %s (state %s); it keeps going: check it with `corral job status %s`\n",
				timeout, id, state, id)
			return ExitTimeout
		case errors.Is(err, api.ErrUnavailable):
			select {
			case <-time.After(unavailableRetry):
				continue
			case <-ctx.Done():
				continue // reported by the next call
			}
		case err != nil:
			p.clear()
			return m.fail(err)
		}
		job = j
		if terminal(job.State) {
			break
		}
		p.draw(job)
		p.note(job)
		switch {
		case next == 0: // no index from the server: poll gently, never spin
			select {
			case <-time.After(pollInterval):
			case <-ctx.Done():
			}
		case next < index: // the index went backwards (new leader, restore): start over
			next = 0
		}
		index = next
	}
	p.clear()
	return outcome(m, job)
}

// outcome prints a finished job and returns its exit code.
func outcome(m *Meta, job *api.Job) int {
	code := ExitOK
	switch job.State {
	case "failed":
		code = ExitFailed
	case "cancelled":
		code = ExitCancelled
	}
	m.output(job, func(w io.Writer) {
		attempts := fmt.Sprintf("%d attempt", job.Attempt)
		if job.Attempt != 1 {
			attempts += "s"
		}
		switch job.State {
		case "succeeded":
			fmt.Fprintf(w, "Job %s succeeded after %s\n", job.ID, attempts)
			if len(job.Result) > 0 {
				fmt.Fprintf(w, "Result: %s\n", job.Result)
			}
		case "failed":
			fmt.Fprintf(w, "Job %s failed after %s: %s\n", job.ID, attempts, dash(job.Error))
		default:
			fmt.Fprintf(w, "Job %s was cancelled\n", job.ID)
		}
	})
	return code
}

// progressLine draws a job's progress on one line of an interactive
// stderr, rewriting it in place. Without a terminal it writes one line per
// attempt instead (note), so a log shows each failure and the next retry.
type progressLine struct {
	m     *Meta
	drawn bool
	// noted is the last (state, attempt) written by note.
	noted string
}

// lastError is the error of the job's latest finished attempt.
func lastError(job *api.Job) string {
	for i := len(job.Attempts) - 1; i >= 0; i-- {
		if a := job.Attempts[i]; !a.Finished.IsZero() && a.Error != "" {
			return a.Error
		}
	}
	return job.Error
}

// retryNote says when a scheduled job after a failed attempt runs again.
func retryNote(job *api.Job) string {
	if job.State != "scheduled" || job.Attempt == 0 {
		return ""
	}
	note := fmt.Sprintf("attempt %d of %d failed", job.Attempt, job.MaxAttempts)
	if e := lastError(job); e != "" {
		note += ": " + e
	}
	if !job.RunAt.IsZero() {
		note += fmt.Sprintf("; next retry %s", when(job.RunAt))
	}
	return note
}

// note writes a line on a non-interactive stderr when the job moves to
// another state or attempt.
func (p *progressLine) note(job *api.Job) {
	if p.m.Interactive {
		return
	}
	key := fmt.Sprintf("%s/%d", job.State, job.Attempt)
	if key == p.noted {
		return
	}
	p.noted = key
	if n := retryNote(job); n != "" {
		fmt.Fprintf(p.m.Stderr, "job %s: %s\n", job.ID, oneLine(n))
	}
}

func (p *progressLine) draw(job *api.Job) {
	if !p.m.Interactive {
		return
	}
	line := fmt.Sprintf("%s: %s", job.ID, job.State)
	if n := retryNote(job); n != "" {
		line += ", " + n
	} else if job.Attempt > 0 {
		line += fmt.Sprintf(", attempt %d of %d", job.Attempt, job.MaxAttempts)
	}
	if job.Node != "" {
		line += " on " + job.Node
	}
	if job.Progress != nil {
		line += fmt.Sprintf(", %.0f%%", job.Progress.Percent)
		if job.Progress.Message != "" {
			line += " " + job.Progress.Message
		}
	}
	if job.Waiting != "" {
		line += " (" + job.Waiting + ")"
	}
	fmt.Fprintf(p.m.Stderr, "\r\x1b[K%s", oneLine(line))
	p.drawn = true
}

func (p *progressLine) clear() {
	if p.drawn {
		fmt.Fprint(p.m.Stderr, "\r\x1b[K")
		p.drawn = false
	}
}
