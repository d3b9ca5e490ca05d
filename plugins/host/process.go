package host

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc/status"

	"github.com/corral-dev/corral/plugins/internal/automtls"
	"github.com/corral-dev/corral/plugins/proto"
	"github.com/corral-dev/corral/plugins/sdk"
)

// process is one running plugin process.
type process struct {
	client  *plugin.Client
	rpc     proto.WorkerClient
	sess    *session // nil when the plugin speaks protocol version 1
	pid     int
	started time.Time
}

// exited reports whether the process has ended.
func (p *process) exited() bool { return p.client.Exited() }

// close ends the session and the process (gracefully: go-plugin asks it to
// exit, then kills it after 2s).
func (p *process) close() {
	if p.sess != nil {
		p.sess.close()
	}
	p.client.Kill()
}

// launch starts the plugin process, completes the handshake, fingerprints
// it and configures it. The error is one line, meant for Status.Error.
func (i *instance) launch(ctx context.Context) (*process, sdk.Info, error) {
	ctx, cancel := context.WithTimeout(ctx, i.startTimeout)
	defer cancel()

	// The process lives until procCtx ends (Manager.Close), not ctx.
	cmd := exec.CommandContext(i.procCtx, i.path, i.args...)
	// go-plugin's AutoMTLS protocol, with a P-256 host certificate that TLS
	// stacks outside Go accept too (see package automtls).
	certEnv, tlsConfig, err := automtls.NewClient()
	if err != nil {
		return nil, sdk.Info{}, err
	}
	cmd.Env = []string{certEnv} // go-plugin appends the agent's environment
	var secure *plugin.SecureConfig
	if i.checksum != nil {
		secure = &plugin.SecureConfig{Checksum: i.checksum, Hash: sha256.New()}
	}
	stderr := &tailWriter{}
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  sdk.Handshake,
		VersionedPlugins: hostPlugins(),
		Cmd:              cmd,
		SecureConfig:     secure,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		TLSConfig:        tlsConfig,
		Managed:          true,
		StartTimeout:     i.startTimeout,
		Logger:           &stderrLogger{Logger: i.logger, stderrName: filepath.Base(i.path)},
		Stderr:           stderr,
		SyncStdout:       &logWriter{logger: i.logger, level: hclog.Warn, msg: "plugin wrote to stdout; plugins must log to stderr"},
		SyncStderr:       &logWriter{logger: i.logger, level: hclog.Info, msg: "plugin stderr"},
	})
	fail := func(err error) (*process, sdk.Info, error) {
		client.Kill()
		return nil, sdk.Info{}, err
	}

	rpcClient, err := client.Client()
	if err != nil {
		client.Kill() // also waits until the plugin's stderr is read
		return nil, sdk.Info{}, describeStartError(err, stderr.firstPlain())
	}
	raw, err := rpcClient.Dispense(sdk.PluginName)
	if err != nil {
		return fail(oneLine(fmt.Errorf("dispensing the worker: %w", err)))
	}
	worker, ok := raw.(proto.WorkerClient)
	if !ok {
		return fail(fmt.Errorf("dispensed %T, not a worker client", raw))
	}
	resp, err := worker.Info(ctx, &proto.Empty{})
	if err != nil {
		if tlsErr := describeTLSError(err); tlsErr != nil {
			return fail(tlsErr)
		}
		return fail(oneLine(fmt.Errorf("fingerprint (Info) failed: %s", status.Convert(err).Message())))
	}
	version := client.NegotiatedVersion()
	if int(resp.GetApiVersion()) != version {
		return fail(fmt.Errorf("plugin implements worker API version %d but negotiated protocol version %d; this corral supports %d to %d",
			resp.GetApiVersion(), version, sdk.MinAPIVersion, sdk.APIVersion))
	}
	if _, err := worker.Configure(ctx, &proto.ConfigureRequest{ConfigJson: i.config}); err != nil {
		return fail(oneLine(fmt.Errorf("configure: %s", status.Convert(err).Message())))
	}
	pid, _ := strconv.Atoi(client.ID())
	info := sdk.Info{Name: resp.GetName(), Version: resp.GetVersion(), Description: resp.GetDescription()}
	proc := &process{client: client, rpc: worker, pid: pid, started: time.Now()}
	if version >= 2 {
		sess, err := openSession(worker, func(err error) { i.sessionEnded(proc, err) })
		if err != nil {
			return fail(oneLine(fmt.Errorf("opening the job session: %s", status.Convert(err).Message())))
		}
		proc.sess = sess
	}
	return proc, info, nil
}

// hostPlugins is what the host offers go-plugin: the worker under every
// protocol version it speaks. go-plugin settles on the newest one the
// plugin serves.
func hostPlugins() map[int]plugin.PluginSet {
	sets := make(map[int]plugin.PluginSet, sdk.APIVersion-sdk.MinAPIVersion+1)
	for v := sdk.MinAPIVersion; v <= sdk.APIVersion; v++ {
		sets[v] = plugin.PluginSet{sdk.PluginName: &sdk.GRPCPlugin{}}
	}
	return sets
}

// describeStartError turns go-plugin's multi-line start errors into one line
// that says what is wrong with the plugin.
func describeStartError(err error, stderrLine string) error {
	msg := err.Error()
	withStderr := func(s string) error {
		if stderrLine != "" {
			s += fmt.Sprintf(" (stderr: %q)", stderrLine)
		}
		return errors.New(s)
	}
	const unrecognized = "Unrecognized remote plugin message: "
	switch {
	case errors.Is(err, plugin.ErrChecksumsDoNotMatch):
		return errors.New("checksum mismatch: the executable's sha256 differs from the configured checksum")
	case strings.HasPrefix(msg, unrecognized):
		first, _, _ := strings.Cut(strings.TrimPrefix(msg, unrecognized), "\n")
		if first != "" {
			return fmt.Errorf("plugin wrote %q to stdout instead of the go-plugin handshake; plugins must log to stderr", first)
		}
		return withStderr(exitedBeforeHandshake(stderrLine))
	case strings.Contains(msg, "plugin exited before we could connect"):
		return withStderr(exitedBeforeHandshake(stderrLine))
	case strings.Contains(msg, "timeout while waiting for plugin to start"):
		return withStderr("plugin did not complete the go-plugin handshake in time")
	case strings.Contains(strings.ToLower(msg), "incompatible api version"):
		return oneLine(fmt.Errorf("incompatible plugin protocol version: %s", msg))
	}
	return oneLine(fmt.Errorf("starting plugin: %w", err))
}

// exitedBeforeHandshake says why a plugin exited without a handshake line,
// judging by the first plain line of its stderr: go-plugin's servers (and
// the Python SDK) print "This binary is a plugin..." when the magic cookie
// in their environment is not theirs.
func exitedBeforeHandshake(stderrLine string) string {
	if strings.HasPrefix(stderrLine, "This binary is a plugin") {
		return fmt.Sprintf("plugin exited before the handshake: wrong magic cookie, it was built for another magic cookie than %s=%s (another application's plugin, or a Corral plugin built against another SDK)",
			sdk.Handshake.MagicCookieKey, sdk.Handshake.MagicCookieValue)
	}
	return "plugin exited before the handshake: not a Corral plugin, or it failed at startup"
}

// describeTLSError explains a failed TLS handshake with the plugin (the
// first RPC reports it), naming the step of the automatic mTLS the plugin
// got wrong; it returns nil for other errors.
func describeTLSError(err error) error {
	msg := status.Convert(err).Message()
	if !strings.Contains(msg, "authentication handshake failed") {
		return nil
	}
	const steps = "see the mTLS steps in plugins/proto/README.md"
	switch {
	case strings.Contains(msg, "first record does not look like a TLS handshake"):
		return fmt.Errorf("plugin does not speak mTLS: it serves plain gRPC, but Corral requires TLS with a certificate of the plugin's own, "+
			"sent as the 6th field of the handshake line, and the host's certificate from %s as the only trusted client CA; %s", automtls.EnvClientCert, steps)
	case strings.Contains(msg, "certificate signed by unknown authority"):
		return fmt.Errorf("plugin's TLS certificate is not the one in its handshake line: send the certificate's DER bytes, "+
			"base64 without padding, as the 6th field; %s", steps)
	case strings.Contains(msg, "certificate is valid for"), strings.Contains(msg, "certificate is not valid for any names"):
		return fmt.Errorf("plugin's TLS certificate must name %q (DNS SAN); %s", automtls.ServerName, steps)
	case strings.Contains(msg, "bad certificate"), strings.Contains(msg, "unknown certificate authority"),
		strings.Contains(msg, "certificate required"), strings.Contains(msg, "unknown ca"):
		return fmt.Errorf("plugin rejected the host's client certificate: trust the certificate in %s as the client CA; %s", automtls.EnvClientCert, steps)
	}
	return oneLine(fmt.Errorf("TLS handshake with the plugin failed (%s): %s", steps, msg))
}

// oneLine flattens err's message to a single line.
func oneLine(err error) error {
	msg := strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", "; ")), " ")
	return errors.New(msg)
}

// tailWriter keeps the last lines a plugin wrote to its real stderr, to
// explain a failed start.
type tailWriter struct {
	mu    sync.Mutex
	lines []string
	part  []byte
}

// maxTail is how many stderr lines tailWriter keeps.
const maxTail = 16

// Write implements io.Writer.
func (w *tailWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.part = append(w.part, p...)
	for {
		i := bytes.IndexByte(w.part, '\n')
		if i < 0 {
			break
		}
		w.lines = append(w.lines, string(w.part[:i]))
		w.part = w.part[i+1:]
		if len(w.lines) > maxTail {
			w.lines = w.lines[1:]
		}
	}
	if len(w.part) > 4096 {
		w.part = w.part[:0]
	}
	return len(p), nil
}

// firstPlain returns the first kept line that is not an hclog JSON entry.
func (w *tailWriter) firstPlain() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, l := range w.lines {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, "{") {
			return l
		}
	}
	return ""
}

// stderrLogger is the logger handed to go-plugin. go-plugin logs each line
// a plugin writes to stderr through Named(<executable's base name>): hclog
// JSON lines at their own level, plain lines at DEBUG. Plain lines are all a
// plugin not written in Go has, so stderrLogger logs them at INFO, and
// under the plugin's own logger (its name in Corral) rather than a child.
type stderrLogger struct {
	hclog.Logger
	stderrName string
}

// Named implements hclog.Logger.
func (l *stderrLogger) Named(name string) hclog.Logger {
	if name == l.stderrName {
		return plainAtInfo{l.Logger}
	}
	return l.Logger.Named(name)
}

// plainAtInfo logs go-plugin's plain stderr lines (DEBUG messages without
// fields; parsed JSON entries always carry a timestamp field) at INFO.
type plainAtInfo struct{ hclog.Logger }

// Debug implements hclog.Logger.
func (l plainAtInfo) Debug(msg string, args ...any) {
	if len(args) == 0 {
		l.Logger.Info(msg)
		return
	}
	l.Logger.Debug(msg, args...)
}

// logWriter logs each line written to it.
type logWriter struct {
	logger hclog.Logger
	level  hclog.Level
	msg    string
}

// Write implements io.Writer.
func (w *logWriter) Write(p []byte) (int, error) {
	for line := range strings.SplitSeq(strings.TrimRight(string(p), "\n"), "\n") {
		w.logger.Log(w.level, w.msg, "line", line)
	}
	return len(p), nil
}
