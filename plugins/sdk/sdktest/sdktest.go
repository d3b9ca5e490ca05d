// Package sdktest lets a plugin author test a Corral worker plugin without a
// cluster. It talks to the plugin through the real go-plugin path, as the
// agent does, sends it jobs, and collects their logs, progress and result:
//
//	func TestUpper(t *testing.T) {
//		p := sdktest.Serve(t, upper{})                      // in-process
//		// p := sdktest.Exec(t, sdktest.Build(t, "."), nil) // or the built binary
//		out := p.Run(context.Background(), sdktest.Request{Payload: []byte("hi")})
//		if out.Err != nil || string(out.Result) != "HI" { ... }
//	}
//
// Serve runs the worker inside the test binary: go-plugin's server in test
// mode on a local socket, reached by a go-plugin client, so the job goes
// through gRPC, the SDK's server and the negotiated protocol version, but
// no process is started. Exec starts an executable as the agent does: the
// magic cookie, version negotiation, automatic mTLS and the stdout
// handshake. It works for plugins in any language.
//
// Cancel a job by cancelling Run's context; give it a timeout with
// Request.Timeout. Either way the plugin's job context ends. Under protocol
// version 2 Run then waits (up to Options.Grace) for the plugin's final
// event, as the agent does; under version 1 a cancel ends the call's
// stream, and Run returns at once.
package sdktest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc/status"

	"github.com/corral-dev/corral/plugins/internal/automtls"
	"github.com/corral-dev/corral/plugins/proto"
	"github.com/corral-dev/corral/plugins/sdk"
)

// Errors in Outcome.Err besides *JobError.
var (
	// ErrCrashed means the plugin broke the call: its process died, or the
	// stream ended without a final event.
	ErrCrashed = errors.New("plugin crashed")
	// ErrNoAnswer means the plugin sent no final event within Options.Grace
	// after the job's context ended (cancel or timeout).
	ErrNoAnswer = errors.New("plugin did not end the job after it was cancelled")
)

// JobError is the error the plugin's Run returned.
type JobError struct {
	// Message is the error's text.
	Message string
	// NonRetryable is set when the plugin marked the error with
	// sdk.NonRetryable: the job would fail without retries.
	NonRetryable bool
}

// Error implements error.
func (e *JobError) Error() string { return e.Message }

// Request is one job attempt to run. Zero fields get defaults: ID
// "test-job-N", Attempt 1, Queue "default", no timeout.
type Request struct {
	ID      string
	Attempt int
	Queue   string
	Payload []byte
	// Timeout is passed to the plugin, whose job context ends after it.
	Timeout time.Duration
}

// Log is one line of a job's log.
type Log struct {
	// Stream is "plugin", "stdout" or "stderr".
	Stream string
	Line   string
}

// Progress is one progress report.
type Progress struct {
	// Percent is from 0 to 100.
	Percent float64
	Message string
}

// Outcome is what a job attempt produced.
type Outcome struct {
	// Result is the result bytes when Err is nil.
	Result []byte
	// Err is nil on success, a *JobError when the plugin's Run failed, or
	// ErrCrashed / ErrNoAnswer.
	Err error
	// Logs and Progress are every line and report, in order.
	Logs     []Log
	Progress []Progress
	// Cancelled is set when Run's context ended before the final event.
	Cancelled bool
}

// Lines returns the log lines of the "plugin" stream (Reporter.Log).
func (o Outcome) Lines() []string {
	var out []string
	for _, l := range o.Logs {
		if l.Stream == string(sdk.StreamPlugin) {
			out = append(out, l.Line)
		}
	}
	return out
}

// Options tune Serve and Exec.
type Options struct {
	// Config is the plugin's config, JSON, passed to Configure (as the
	// agent does with the plugin's config {} block). A Configure error
	// fails the test.
	Config []byte
	// APIVersions are the worker protocol versions offered (default: every
	// version the SDK speaks; the plugin and the harness settle on the
	// newest one both speak).
	APIVersions []int
	// Grace is how long Run waits for the final event after the job's
	// context ended (default 10s).
	Grace time.Duration
	// StartTimeout bounds the launch and handshake (default 30s).
	StartTimeout time.Duration
}

// Plugin is a plugin under test. Its methods are safe for concurrent use.
type Plugin struct {
	t       testing.TB
	client  *plugin.Client
	rpc     proto.WorkerClient
	info    sdk.Info
	version int
	grace   time.Duration
	sess    *session // nil under protocol version 1
	nextJob atomic.Uint64
}

// Serve serves w inside the test binary and returns a client connected to
// it through go-plugin. The server and the connection end with the test.
// Note that, as in a plugin process, a Run that ignores its context for
// sdk.CancelGrace makes the SDK exit the process (here: the test binary);
// test that with Exec.
func Serve(t testing.TB, w sdk.Worker, opts ...Options) *Plugin {
	t.Helper()
	o := options(opts)
	ctx, stop := context.WithCancel(context.Background())
	reattach := make(chan *plugin.ReattachConfig, 1)
	closed := make(chan struct{})
	sets := map[int]plugin.PluginSet{}
	for _, v := range o.APIVersions {
		sets[v] = plugin.PluginSet{sdk.PluginName: &sdk.GRPCPlugin{Impl: w, APIVersion: v}}
	}
	go plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  sdk.Handshake,
		VersionedPlugins: sets,
		GRPCServer:       plugin.DefaultGRPCServer,
		Logger:           testLogger(t, "plugin"),
		Test:             &plugin.ServeTestConfig{Context: ctx, ReattachConfigCh: reattach, CloseCh: closed},
	})
	t.Cleanup(func() {
		stop()
		<-closed
	})
	var rc *plugin.ReattachConfig
	select {
	case rc = <-reattach:
	case <-closed:
		t.Fatal("sdktest: the in-process plugin server stopped before serving")
	case <-time.After(o.StartTimeout):
		t.Fatal("sdktest: the in-process plugin server did not start")
	}
	return connect(t, o, &plugin.ClientConfig{
		HandshakeConfig:  sdk.Handshake,
		Plugins:          clientSets(o.APIVersions)[rc.ProtocolVersion],
		Reattach:         rc,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Logger:           testLogger(t, "host"),
	})
}

// Exec starts the plugin executable at path (with args) as the agent does,
// and returns a client connected to it. The process is stopped (through
// go-plugin's controller) when the test ends. Its stderr goes to the test
// log.
func Exec(t testing.TB, path string, args []string, opts ...Options) *Plugin {
	t.Helper()
	o := options(opts)
	certEnv, tlsConfig, err := automtls.NewClient()
	if err != nil {
		t.Fatalf("sdktest: %v", err)
	}
	cmd := exec.Command(path, args...)
	cmd.Env = []string{certEnv}
	return connect(t, o, &plugin.ClientConfig{
		HandshakeConfig:  sdk.Handshake,
		VersionedPlugins: clientSets(o.APIVersions),
		Cmd:              cmd,
		TLSConfig:        tlsConfig,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		StartTimeout:     o.StartTimeout,
		Logger:           testLogger(t, filepath.Base(path)),
		Stderr:           io.Discard, // go-plugin logs each line through Logger
	})
}

// Build builds the Go main package pkg (a path or an import path, as for
// go build) into a temporary directory and returns the binary's path.
func Build(t testing.TB, pkg string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "plugin")
	cmd := exec.Command("go", "build", "-o", out, pkg)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sdktest: go build %s: %v\n%s", pkg, err, msg)
	}
	return out
}

func options(opts []Options) Options {
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	if len(o.APIVersions) == 0 {
		for v := sdk.MinAPIVersion; v <= sdk.APIVersion; v++ {
			o.APIVersions = append(o.APIVersions, v)
		}
	}
	if o.Grace == 0 {
		o.Grace = 10 * time.Second
	}
	if o.StartTimeout == 0 {
		o.StartTimeout = 30 * time.Second
	}
	return o
}

// clientSets offers the worker under the given protocol versions.
func clientSets(versions []int) map[int]plugin.PluginSet {
	sets := map[int]plugin.PluginSet{}
	for _, v := range versions {
		sets[v] = plugin.PluginSet{sdk.PluginName: &sdk.GRPCPlugin{}}
	}
	return sets
}

// connect starts the client, fingerprints and configures the plugin and,
// under protocol version 2, opens its Session.
func connect(t testing.TB, o Options, cfg *plugin.ClientConfig) *Plugin {
	t.Helper()
	client := plugin.NewClient(cfg)
	t.Cleanup(client.Kill)
	rpcClient, err := client.Client()
	if err != nil {
		t.Fatalf("sdktest: starting the plugin: %v", err)
	}
	raw, err := rpcClient.Dispense(sdk.PluginName)
	if err != nil {
		t.Fatalf("sdktest: dispensing the worker: %v", err)
	}
	rpc := raw.(proto.WorkerClient)
	ctx, cancel := context.WithTimeout(context.Background(), o.StartTimeout)
	defer cancel()
	info, err := rpc.Info(ctx, &proto.Empty{})
	if err != nil {
		t.Fatalf("sdktest: Info: %v", err)
	}
	version := client.NegotiatedVersion()
	if int(info.GetApiVersion()) != version {
		t.Fatalf("sdktest: the plugin reports api_version %d but negotiated protocol version %d; they must be equal",
			info.GetApiVersion(), version)
	}
	if _, err := rpc.Configure(ctx, &proto.ConfigureRequest{ConfigJson: o.Config}); err != nil {
		t.Fatalf("sdktest: Configure: %s", status.Convert(err).Message())
	}
	p := &Plugin{
		t: t, client: client, rpc: rpc, version: version, grace: o.Grace,
		info: sdk.Info{Name: info.GetName(), Version: info.GetVersion(), Description: info.GetDescription()},
	}
	if version >= 2 {
		sctx, stop := context.WithCancel(context.Background())
		stream, err := rpc.Session(sctx)
		if err != nil {
			stop()
			t.Fatalf("sdktest: opening the Session: %v", err)
		}
		p.sess = newSession(stream, stop)
		t.Cleanup(p.sess.close)
	}
	return p
}

// Info returns what the plugin's Info reported.
func (p *Plugin) Info() sdk.Info { return p.info }

// APIVersion returns the negotiated worker protocol version.
func (p *Plugin) APIVersion() int { return p.version }

// Exited reports whether the plugin process has exited (always false for
// Serve).
func (p *Plugin) Exited() bool { return p.client.Exited() }

// Run runs one job attempt and returns its outcome. Cancelling ctx cancels
// the job; Run then still waits (up to Options.Grace) for the plugin's
// final event.
func (p *Plugin) Run(ctx context.Context, req Request) Outcome {
	n := p.nextJob.Add(1)
	if req.ID == "" {
		req.ID = fmt.Sprintf("test-job-%d", n)
	}
	if req.Attempt == 0 {
		req.Attempt = 1
	}
	if req.Queue == "" {
		req.Queue = "default"
	}
	msg := &proto.RunRequest{
		JobId: req.ID, Attempt: uint32(req.Attempt), Queue: req.Queue,
		Payload: req.Payload, TimeoutMs: req.Timeout.Milliseconds(),
	}
	if p.sess != nil {
		return p.sess.run(ctx, n, msg, p.grace)
	}
	return p.runStream(ctx, msg)
}

// runStream runs msg on a Run stream of its own (protocol version 1).
func (p *Plugin) runStream(ctx context.Context, msg *proto.RunRequest) Outcome {
	sctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if msg.GetTimeoutMs() > 0 {
		// A plugin still silent Grace after its timeout is hung.
		var cancelT context.CancelFunc
		sctx, cancelT = context.WithTimeout(sctx, time.Duration(msg.GetTimeoutMs())*time.Millisecond+p.grace)
		defer cancelT()
	}
	var out Outcome
	// The host cancels a version 1 job by cancelling its stream.
	stop := context.AfterFunc(ctx, cancel)
	defer stop()
	stream, err := p.rpc.Run(sctx, msg)
	if err != nil {
		if out.Cancelled = ctx.Err() != nil; out.Cancelled {
			out.Err = fmt.Errorf("job cancelled: %w", ctx.Err())
			return out
		}
		out.Err = fmt.Errorf("%w: %s", ErrCrashed, status.Convert(err).Message())
		return out
	}
	for {
		ev, err := stream.Recv()
		if err != nil {
			out.Cancelled = ctx.Err() != nil
			if out.Cancelled {
				// The host cancels a version 1 call by ending its stream;
				// the final event cannot arrive.
				out.Err = fmt.Errorf("job cancelled: %w", ctx.Err())
				return out
			}
			if errors.Is(sctx.Err(), context.DeadlineExceeded) {
				out.Err = fmt.Errorf("%w within %s of its timeout", ErrNoAnswer, p.grace)
				return out
			}
			out.Err = fmt.Errorf("%w: %s", ErrCrashed, status.Convert(err).Message())
			return out
		}
		if done := out.add(ev.GetLog(), ev.GetProgress(), ev.GetResult(), ev.GetError()); done {
			return out
		}
	}
}

// add records one event and reports whether it was the final one.
func (o *Outcome) add(l *proto.Log, pr *proto.Progress, res *proto.Result, e *proto.Error) bool {
	switch {
	case l != nil:
		o.Logs = append(o.Logs, Log{Stream: l.GetStream(), Line: l.GetLine()})
	case pr != nil:
		o.Progress = append(o.Progress, Progress{Percent: pr.GetPercent(), Message: pr.GetMessage()})
	case res != nil:
		o.Result = res.GetData()
		return true
	case e != nil:
		o.Err = &JobError{Message: e.GetMessage(), NonRetryable: e.GetNonRetryable()}
		return true
	}
	return false
}

// testLogger collects the plugin's and go-plugin's logs at DEBUG and
// prints them with t.Log if the test fails.
func testLogger(t testing.TB, name string) hclog.Logger {
	w := &logBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("sdktest: %s log:\n%s", name, w.String())
		}
	})
	return hclog.New(&hclog.LoggerOptions{Name: name, Level: hclog.Debug, Output: w})
}

// logBuffer is a bytes.Buffer safe for concurrent use.
type logBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
