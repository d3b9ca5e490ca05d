package command

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/corral-dev/corral/daemon/api"
	"github.com/corral-dev/corral/daemon/certs"
)

// Environment variables read by the client flags.
const (
	EnvAddress    = "CORRAL_ADDR"
	EnvToken      = "CORRAL_TOKEN"
	EnvCACert     = "CORRAL_CACERT"
	EnvClientCert = "CORRAL_CLIENT_CERT"
	EnvClientKey  = "CORRAL_CLIENT_KEY"
)

// Exit codes (DESIGN §7).
const (
	ExitOK        = 0
	ExitError     = 1
	ExitFailed    = 2 // the job ended failed
	ExitCancelled = 3 // the job ended cancelled
	ExitTimeout   = 4 // waiting for the job timed out
)

// clientFlagsHelp is appended to the help of every command that talks to
// an agent.
const clientFlagsHelp = `
Client options:

  -address=<addr>
    The agent's HTTP API. Default: $CORRAL_ADDR, else http://127.0.0.1:4780.

  -token=<token>
    The token sent with each request. Default: $CORRAL_TOKEN.

  -ca-file=<path>
    The CA certificate that signed the agent's HTTPS certificate (for an
    https:// address). Default: $CORRAL_CACERT.

  -client-cert=<path>, -client-key=<path>
    A client certificate and key to present over HTTPS. Default:
    $CORRAL_CLIENT_CERT, $CORRAL_CLIENT_KEY.

  -json
    Print machine-readable JSON instead of text.
`

// Meta holds what every command shares: the standard streams, the
// environment, and the client flags (-address, -token, -json).
type Meta struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// Getenv reads the environment (os.Getenv outside tests).
	Getenv func(string) string
	// Interactive is true when stderr is a terminal: progress is drawn there.
	Interactive bool
	// StdinTerminal is true when stdin is a terminal: commands that change
	// many jobs ask for confirmation there.
	StdinTerminal bool

	address    string
	token      string
	json       bool
	caFile     string
	clientCert string
	clientKey  string
}

// flagSet returns a flag set whose errors and usage go to stderr; with
// client true it carries the client flags.
func (m *Meta) flagSet(name string, client bool, help func() string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	// The flag package writes its message to the output and then calls
	// Usage: the message is caught and reworded into one line.
	var msg strings.Builder
	fs.SetOutput(&msg)
	fs.Usage = func() {
		text := strings.TrimSpace(msg.String())
		msg.Reset()
		if text == "" {
			fmt.Fprintln(m.Stderr, strings.TrimSpace(help()))
			return
		}
		fmt.Fprintf(m.Stderr, "error: %s (see corral %s -h)\n", flagMessage(fs, text), name)
	}
	if client {
		fs.StringVar(&m.address, "address", "", "")
		fs.StringVar(&m.token, "token", "", "")
		fs.BoolVar(&m.json, "json", false, "")
		fs.StringVar(&m.caFile, "ca-file", "", "")
		fs.StringVar(&m.clientCert, "client-cert", "", "")
		fs.StringVar(&m.clientKey, "client-key", "", "")
	}
	return fs
}

// parse parses args allowing flags after positional arguments
// (`job wait ID -timeout 5s`); "--" ends the flags. It returns the
// positional arguments.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// usageError prints what is wrong with the arguments in one line, with
// the usage form and where the full help is; it returns ExitError.
func (m *Meta) usageError(help string, format string, args ...any) int {
	name, form := usageForm(help)
	fmt.Fprintf(m.Stderr, "error: %s; usage: %s (see corral %s -h)\n", oneLine(fmt.Sprintf(format, args...)), form, name)
	return ExitError
}

// usageForm returns the command name ("job submit") and the usage line
// ("corral job submit [options] PLUGIN ...") of a help text.
func usageForm(help string) (name, form string) {
	for _, line := range strings.Split(help, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "Usage: ") {
			continue
		}
		form = strings.TrimPrefix(line, "Usage: ")
		words := strings.Fields(form)
		var cmd []string
		for _, w := range words[1:] {
			if strings.Trim(w, "abcdefghijklmnopqrstuvwxyz-") != "" || strings.HasPrefix(w, "-") {
				break
			}
			cmd = append(cmd, w)
		}
		return strings.Join(cmd, " "), form
	}
	return "", "corral"
}

// flagMessage rewords a flag package error so it names the flag and the
// form it expects ("-delay=5: want a duration with a unit, such as 5s").
func flagMessage(fs *flag.FlagSet, text string) string {
	if name, ok := strings.CutPrefix(text, "flag provided but not defined: -"); ok {
		return fmt.Sprintf("unknown flag -%s", name)
	}
	if name, ok := strings.CutPrefix(text, "flag needs an argument: -"); ok {
		return fmt.Sprintf("flag -%s needs a value: write -%s=<value>", name, name)
	}
	// invalid value "5" for flag -delay: parse error
	var value, name string
	if _, err := fmt.Sscanf(text, "invalid value %q for flag -%s", &value, &name); err == nil {
		name = strings.TrimSuffix(name, ":")
		want := "a valid value"
		if f := fs.Lookup(name); f != nil {
			switch fmt.Sprintf("%T", f.Value) {
			case "*flag.durationValue":
				want = "a duration with a unit, such as 5s, 10m or 1h30m"
				if _, err := strconv.ParseFloat(value, 64); err == nil {
					want += fmt.Sprintf(" (did you mean %ss?)", value)
				}
			case "*flag.intValue", "*flag.int64Value", "*flag.uintValue", "*flag.uint64Value":
				want = "a whole number"
			case "*flag.boolValue":
				want = "true or false"
			default:
				if _, detail, ok := strings.Cut(text, ": "); ok {
					want = detail
				}
			}
		}
		return fmt.Sprintf("-%s=%q: want %s", name, value, want)
	}
	return oneLine(text)
}

// client builds the API client from the flags and the environment.
func (m *Meta) client() (*api.Client, error) {
	addr, token := m.address, m.token
	if addr == "" {
		addr = m.Getenv(EnvAddress)
	}
	if token == "" {
		token = m.Getenv(EnvToken)
	}
	client, err := api.NewClient(addr, token)
	if err != nil {
		return nil, err
	}
	ca, cert, key := orEnv(m.caFile, m.Getenv(EnvCACert)), orEnv(m.clientCert, m.Getenv(EnvClientCert)), orEnv(m.clientKey, m.Getenv(EnvClientKey))
	if ca != "" || cert != "" || key != "" {
		tc, err := certs.ClientConfig(ca, cert, key)
		if err != nil {
			return nil, err
		}
		client.SetTLSConfig(tc)
	}
	return client, nil
}

// orEnv returns flag, or env when the flag is empty.
func orEnv(flag, env string) string {
	if flag != "" {
		return flag
	}
	return env
}

// context returns a context cancelled by SIGINT or SIGTERM.
func (m *Meta) context() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// fail prints err as one line on stderr, with a hint where one helps, and
// returns ExitError.
func (m *Meta) fail(err error) int {
	msg := err.Error()
	switch {
	case errors.Is(err, api.ErrUnreachable):
		msg += " (is the agent running? set -address or " + EnvAddress + ")"
	case errors.Is(err, api.ErrBadAddress):
		msg += " (set -address or " + EnvAddress + " to http://host:port)"
	case errors.Is(err, api.ErrUnavailable):
		msg += " (retry in a moment; `corral members` shows the cluster)"
	case errors.Is(err, context.Canceled):
		msg = "interrupted"
	}
	fmt.Fprintln(m.Stderr, "error: "+oneLine(msg))
	return ExitError
}

// output prints v as indented JSON with -json, else calls human with
// stdout. Every command prints through it.
func (m *Meta) output(v any, human func(w io.Writer)) int {
	if m.json {
		enc := json.NewEncoder(m.Stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			return m.fail(fmt.Errorf("write output: %w", err))
		}
		return ExitOK
	}
	human(m.Stdout)
	return ExitOK
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// runClient parses args with fs, checks that the positional arguments
// match want (their names, for the message), then calls fn with a
// signal-aware context and a client.
func (m *Meta) runClient(fs *flag.FlagSet, help string, args []string, want []string,
	fn func(ctx context.Context, client *api.Client, pos []string) int) int {
	pos, err := parse(fs, args)
	if err != nil {
		return ExitError
	}
	if len(pos) != len(want) {
		if len(want) == 0 {
			return m.usageError(help, "this command takes no arguments, got %d", len(pos))
		}
		return m.usageError(help, "expected %s, got %d argument(s)", strings.Join(want, " "), len(pos))
	}
	client, err := m.client()
	if err != nil {
		return m.fail(err)
	}
	ctx, stop := m.context()
	defer stop()
	return fn(ctx, client, pos)
}
