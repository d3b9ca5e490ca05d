package builtin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/corral-dev/corral/plugins/sdk"
)

// execWaitDelay bounds how long exec reads output after the command's
// process group is gone (a grandchild that left the group may hold the pipes).
const execWaitDelay = 2 * time.Second

// execConfig is the exec plugin's config block.
type execConfig struct {
	// AllowedCommands, when set, is the list of argv[0] values jobs may run.
	AllowedCommands []string `json:"allowed_commands"`
	// PassEnv names agent environment variables passed to commands on top
	// of baseEnv.
	PassEnv []string `json:"pass_env"`
	// User, when set, is the user commands run as (the agent must be
	// allowed to switch to it, normally by running as root).
	User string `json:"user"`

	// cred is User resolved at Configure.
	cred *syscall.Credential
}

// baseEnv are the agent environment variables every command gets; the
// rest of the agent's environment (tokens, cloud credentials, …) is not
// passed unless pass_env names it.
var baseEnv = []string{"PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "LC_MESSAGES", "TZ", "TMPDIR", "TERM"}

// execPayload is the exec plugin's payload.
type execPayload struct {
	// Command is argv; argv[0] is looked up in PATH.
	Command []string `json:"command"`
	// Env is added to the plugin's environment.
	Env map[string]string `json:"env"`
	// Dir is the working directory (default: the plugin's).
	Dir string `json:"dir"`
}

// execResult is the exec plugin's result.
type execResult struct {
	ExitCode int `json:"exit_code"`
}

// execWorker runs one command per job, in its own process group.
type execWorker struct {
	mu  sync.RWMutex
	cfg execConfig
}

// Info implements sdk.Worker.
func (*execWorker) Info() sdk.Info {
	return sdk.Info{Name: "exec", Version: Version, Description: "runs a command; output is streamed as logs; non-zero exit fails the attempt"}
}

// Configure implements sdk.Configurer.
func (w *execWorker) Configure(raw []byte) error {
	var cfg execConfig
	if err := sdk.DecodeConfig(raw, &cfg); err != nil {
		return err
	}
	for _, c := range cfg.AllowedCommands {
		if c == "" {
			return errors.New("invalid config: allowed_commands contains an empty string")
		}
	}
	if cfg.User != "" {
		cred, err := lookupCredential(cfg.User)
		if err != nil {
			return fmt.Errorf("invalid config: user %q: %w", cfg.User, err)
		}
		cfg.cred = cred
	}
	w.mu.Lock()
	w.cfg = cfg
	w.mu.Unlock()
	return nil
}

// Run implements sdk.Worker. The command runs in its own process group;
// the whole group is killed when ctx ends and when the command exits, so no
// process outlives its job.
func (w *execWorker) Run(ctx context.Context, job sdk.Job, r sdk.Reporter) ([]byte, error) {
	var p execPayload
	if err := decodePayload(job.Payload, &p); err != nil {
		return nil, err
	}
	if len(p.Command) == 0 || p.Command[0] == "" {
		return nil, sdk.NonRetryable(errors.New("invalid payload: command is required, e.g. {\"command\": [\"echo\", \"hi\"]}"))
	}
	w.mu.RLock()
	allowed, passEnv, cred := w.cfg.AllowedCommands, w.cfg.PassEnv, w.cfg.cred
	w.mu.RUnlock()
	if len(allowed) > 0 && !slices.Contains(allowed, p.Command[0]) {
		return nil, sdk.NonRetryable(fmt.Errorf("command %q is not in allowed_commands", p.Command[0]))
	}

	cmd := exec.CommandContext(ctx, p.Command[0], p.Command[1:]...)
	cmd.Dir = p.Dir
	cmd.Env = childEnv(os.Environ(), passEnv, p.Env)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: cred}
	cmd.Cancel = func() error { return killGroup(cmd.Process.Pid) }
	out, err := startOutput(cmd, r)
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		out.abort()
		return nil, fmt.Errorf("starting %q: %w", p.Command[0], err)
	}
	err = cmd.Wait()
	_ = killGroup(cmd.Process.Pid) // background children left behind
	out.finish()

	if ctx.Err() != nil {
		return nil, fmt.Errorf("command killed: %w", ctx.Err())
	}
	var exitErr *exec.ExitError
	switch {
	case errors.As(err, &exitErr) && exitErr.ExitCode() >= 0:
		return nil, fmt.Errorf("exit status %d", exitErr.ExitCode())
	case err != nil:
		return nil, fmt.Errorf("running %q: %w", p.Command[0], err)
	}
	return json.Marshal(execResult{ExitCode: 0})
}

// output streams a command's stdout and stderr as log lines. The pipes are
// handed to the child as files, so Wait returns when the process exits rather
// than when every holder of the pipes has closed them.
type output struct {
	readers []*os.File
	writers []*os.File
	pending sync.WaitGroup // one per reader goroutine
}

// startOutput creates the pipes for cmd and starts reading them.
func startOutput(cmd *exec.Cmd, r sdk.Reporter) (*output, error) {
	o := &output{}
	for _, stream := range []sdk.Stream{sdk.StreamStdout, sdk.StreamStderr} {
		pr, pw, err := os.Pipe()
		if err != nil {
			o.abort()
			return nil, fmt.Errorf("creating %s pipe: %w", stream, err)
		}
		o.readers = append(o.readers, pr)
		o.writers = append(o.writers, pw)
		lw := &lineWriter{emit: func(l string) { r.Output(stream, l) }}
		o.pending.Add(1)
		go func() {
			defer o.pending.Done()
			_, _ = io.Copy(lw, pr)
			lw.flush()
		}()
	}
	cmd.Stdout, cmd.Stderr = o.writers[0], o.writers[1]
	return o, nil
}

// abort closes every pipe end and waits for the readers.
func (o *output) abort() {
	for _, f := range o.writers {
		_ = f.Close()
	}
	for _, f := range o.readers {
		_ = f.Close()
	}
	o.pending.Wait()
}

// finish closes the parent's write ends, then waits for the readers to drain
// the pipes, up to execWaitDelay.
func (o *output) finish() {
	for _, f := range o.writers {
		_ = f.Close()
	}
	drained := make(chan struct{})
	go func() {
		o.pending.Wait()
		close(drained)
	}()
	timer := time.NewTimer(execWaitDelay)
	defer timer.Stop()
	select {
	case <-drained:
	case <-timer.C:
		for _, f := range o.readers {
			_ = f.Close() // unblocks the readers
		}
		<-drained
	}
	for _, f := range o.readers {
		_ = f.Close()
	}
}

// killGroup sends SIGKILL to the process group led by pid.
func killGroup(pid int) error {
	err := syscall.Kill(-pid, syscall.SIGKILL)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}

// childEnv is a command's environment: the variables of agentEnv named
// in baseEnv or passEnv (never go-plugin's own), then extra (the job's
// env), sorted by key.
func childEnv(agentEnv, passEnv []string, extra map[string]string) []string {
	var env []string
	for _, kv := range agentEnv {
		key, _, _ := strings.Cut(kv, "=")
		if key == sdk.Handshake.MagicCookieKey || strings.HasPrefix(key, "PLUGIN_") {
			continue
		}
		if slices.Contains(baseEnv, key) || slices.Contains(passEnv, key) {
			env = append(env, kv)
		}
	}
	keys := make([]string, 0, len(extra))
	for k := range extra {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = append(env, k+"="+extra[k])
	}
	return env
}

// lookupCredential resolves a user name or numeric ID to the credential
// a command runs with.
func lookupCredential(name string) (*syscall.Credential, error) {
	u, err := user.Lookup(name)
	if err != nil {
		if u, err = user.LookupId(name); err != nil {
			return nil, fmt.Errorf("no such user: %w", err)
		}
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("uid %q: %w", u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("gid %q: %w", u.Gid, err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// maxLine is the longest log line; longer output is split.
const maxLine = 16 << 10

// lineWriter turns written bytes into log lines.
type lineWriter struct {
	mu   sync.Mutex
	buf  []byte
	emit func(line string)
}

// Write implements io.Writer.
func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := slices.Index(w.buf, '\n')
		switch {
		case i >= 0 && i <= maxLine:
			w.emit(strings.TrimSuffix(string(w.buf[:i]), "\r"))
			w.buf = w.buf[i+1:]
		case len(w.buf) > maxLine:
			w.emit(string(w.buf[:maxLine]))
			w.buf = w.buf[maxLine:]
		default:
			return len(p), nil
		}
	}
}

// flush emits a final unterminated line.
func (w *lineWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.emit(string(w.buf))
		w.buf = nil
	}
}
