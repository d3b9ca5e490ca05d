package command

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/corral-dev/corral/daemon/api"
)

// JobSubmitCommand is `corral job submit`.
type JobSubmitCommand struct {
	Meta
}

// Synopsis implements cli.Command.
func (c *JobSubmitCommand) Synopsis() string { return "Submit a job" }

// Help implements cli.Command.
func (c *JobSubmitCommand) Help() string {
	return strings.TrimSpace(`
Usage: corral job submit [options] PLUGIN [PAYLOAD | @FILE | -]

  Submit a job that the worker plugin PLUGIN runs, and print its ID.
  The payload is given inline, read from FILE (@FILE) or from stdin (-).
  A payload that is not valid JSON is sent as a JSON string.

  With -wait the command follows the job until it ends and exits with its
  outcome: 0 succeeded, 2 failed, 3 cancelled, 4 -wait-timeout reached.

Job options:
` + jobFlagsHelp + `
  -wait                  Follow the job until it ends.
  -wait-timeout=<dur>    Give up waiting after this long (exit 4). Default: none.
` + clientFlagsHelp)
}

// jobFlagsHelp documents the flags of jobFlags.
const jobFlagsHelp = `
  -queue=<name>          Queue to put the job in. Default: "default".
  -priority=<n>          Higher runs first; FIFO within a priority. Default: 0.
  -delay=<duration>      Run no earlier than this long from now ("10m").
  -at=<time>             Run no earlier than this RFC 3339 time. Not with -delay.
  -max-attempts=<n>      Attempts before the job is failed. Default: the queue's (25).
  -timeout=<duration>    Time limit of one attempt. Default: 30m.
  -unique=<key>          Idempotency key: while a job with this key is not
                         finished (or within -unique-for), submitting again
                         returns the existing job's ID.
  -unique-for=<duration> How long -unique holds from the job's creation, even after it ends.
  -constraint=<k=v>      A node tag the executing node must have; repeatable.
  -depends-on=<id,...>   Parent job IDs: the job stays blocked until each
                         of them succeeded, and is cancelled if one fails
                         or is cancelled. Repeatable.`

// jobFlags are the flags that describe a job, shared by job submit and
// job plan.
type jobFlags struct {
	req            api.JobRequest
	delay, timeout time.Duration
	uniqueFor      time.Duration
	at             string
	constraints    kvFlag
	dependsOn      idsFlag
}

// register adds the flags to fs.
func (f *jobFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.req.Queue, "queue", "", "")
	fs.IntVar(&f.req.Priority, "priority", 0, "")
	fs.DurationVar(&f.delay, "delay", 0, "")
	fs.StringVar(&f.at, "at", "", "")
	fs.IntVar(&f.req.MaxAttempts, "max-attempts", 0, "")
	fs.DurationVar(&f.timeout, "timeout", 0, "")
	fs.StringVar(&f.req.UniqueKey, "unique", "", "")
	fs.DurationVar(&f.uniqueFor, "unique-for", 0, "")
	fs.Var(&f.constraints, "constraint", "")
	fs.Var(&f.dependsOn, "depends-on", "")
}

// request builds the job from the parsed flags and the positional
// arguments PLUGIN [PAYLOAD]. A problem is reported on m's stderr (a usage
// problem as one line with the pointer to help) and ok is false: the
// command exits with code.
func (f *jobFlags) request(m *Meta, help string, pos []string) (req api.JobRequest, code int, ok bool) {
	req = f.req
	usage := func(format string, args ...any) (api.JobRequest, int, bool) {
		return req, m.usageError(help, format, args...), false
	}
	if len(pos) < 1 || len(pos) > 2 {
		return usage("expected PLUGIN and an optional PAYLOAD, got %d arguments", len(pos))
	}
	if f.delay != 0 && f.at != "" {
		return usage("-delay and -at both set a start time; use one")
	}
	if f.delay < 0 || f.timeout < 0 || f.uniqueFor < 0 {
		return usage("durations must not be negative")
	}
	if f.at != "" {
		t, err := time.Parse(time.RFC3339, f.at)
		if err != nil {
			return usage("-at=%q: want an RFC 3339 time such as 2030-01-02T15:04:05Z", f.at)
		}
		req.RunAt = &t
	}
	req.Plugin = pos[0]
	req.Delay = api.Duration(f.delay)
	req.Timeout = api.Duration(f.timeout)
	req.UniqueFor = api.Duration(f.uniqueFor)
	if len(f.constraints) > 0 {
		req.Constraints = f.constraints
	}
	req.DependsOn = f.dependsOn
	if len(pos) == 2 {
		payload, err := readPayload(m, pos[1])
		if err != nil {
			return req, m.fail(err), false
		}
		req.Payload = payload
	}
	return req, 0, true
}

// Run implements cli.Command.
func (c *JobSubmitCommand) Run(args []string) int {
	var (
		jf        jobFlags
		waitLimit time.Duration
		wait      bool
	)
	fs := c.flagSet("job submit", true, c.Help)
	jf.register(fs)
	fs.BoolVar(&wait, "wait", false, "")
	fs.DurationVar(&waitLimit, "wait-timeout", 0, "")
	pos, err := parse(fs, args)
	if err != nil {
		return ExitError
	}
	if waitLimit < 0 {
		return c.usageError(c.Help(), "durations must not be negative")
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
	var resp *api.SubmitResponse
	if wait {
		// Submit and wait in one request; on a terminal, only briefly, so
		// progress of a longer job is drawn while following it.
		resp, err = client.SubmitAndWait(ctx, req, c.submitWait(waitLimit))
	} else {
		resp, err = client.Submit(ctx, req)
	}
	if err != nil {
		return c.fail(err)
	}
	for _, w := range resp.Warnings {
		fmt.Fprintf(c.Stderr, "warning: %s\n", w)
	}
	if resp.Existing {
		fmt.Fprintf(c.Stderr, "job %s already exists with unique key %q; not submitted again\n", resp.ID, req.UniqueKey)
	}
	if !wait {
		return c.output(resp, func(w io.Writer) { fmt.Fprintln(w, resp.ID) })
	}
	if !c.json {
		fmt.Fprintln(c.Stdout, resp.ID)
	}
	return follow(ctx, &c.Meta, client, resp.ID, waitLimit)
}

// submitWait is how long a submit with -wait waits inside the request.
func (c *JobSubmitCommand) submitWait(limit time.Duration) time.Duration {
	wait := maxBlockingWait
	if c.Interactive {
		wait = time.Second
	}
	if limit > 0 {
		wait = min(wait, limit)
	}
	return wait
}

// readPayload resolves PAYLOAD, @FILE or - to JSON bytes (see payloadJSON).
func readPayload(c *Meta, arg string) (json.RawMessage, error) {
	var b []byte
	switch {
	case arg == "-":
		data, err := io.ReadAll(c.Stdin)
		if err != nil {
			return nil, fmt.Errorf("read payload from stdin: %w", err)
		}
		b = data
	case strings.HasPrefix(arg, "@"):
		data, err := os.ReadFile(arg[1:])
		if err != nil {
			return nil, fmt.Errorf("read payload: %w", err)
		}
		b = data
	default:
		b = []byte(arg)
	}
	return payloadJSON(b)
}

// payloadJSON returns b when it is JSON, else b as a JSON string. A
// payload that starts with { or [ is meant as JSON: when it does not parse
// the error says where it breaks instead of sending it as a string.
func payloadJSON(b []byte) (json.RawMessage, error) {
	trimmed := strings.TrimSpace(string(b))
	if trimmed != "" && json.Valid([]byte(trimmed)) {
		return json.RawMessage(trimmed), nil
	}
	if strings.HasPrefix(trimmed, "{") || strings.HasPrefix(trimmed, "[") {
		return nil, jsonPayloadError(trimmed)
	}
	return api.JSONString(string(b)), nil
}

// jsonPayloadError describes where a JSON payload breaks: the byte offset,
// the text around it and a caret under the spot.
func jsonPayloadError(s string) error {
	var v any
	err := json.Unmarshal([]byte(s), &v)
	off := len(s)
	var se *json.SyntaxError
	if errors.As(err, &se) {
		off = int(se.Offset)
	}
	msg := strings.TrimPrefix(err.Error(), "json: ")
	if err.Error() == "unexpected end of JSON input" {
		msg = "it ends before the JSON is complete (a missing } or ]?)"
	}
	start := max(0, off-30)
	frag := s[start:min(len(s), off)]
	return fmt.Errorf("payload starts with %q but is not valid JSON at byte %d: %s: %s <-- here (quote it differently, or use @FILE)", s[:1], off, msg, strings.TrimSpace(frag))
}

// kvFlag collects repeated -flag k=v values.
type kvFlag map[string]string

func (f *kvFlag) String() string { return pairs(*f, ",") }

func (f *kvFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("%q: want key=value", s)
	}
	if *f == nil {
		*f = kvFlag{}
	}
	(*f)[k] = v
	return nil
}

// idsFlag collects comma-separated job IDs of a repeatable flag.
type idsFlag []string

func (f *idsFlag) String() string { return strings.Join(*f, ",") }

func (f *idsFlag) Set(s string) error {
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v == "" {
			return fmt.Errorf("%q: want job IDs separated by commas", s)
		}
		*f = append(*f, v)
	}
	return nil
}
