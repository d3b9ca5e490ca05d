// Package sdk is what a Corral worker plugin imports.
//
// A plugin is an executable that implements Worker and calls Serve from its
// main function:
//
//	func main() { sdk.Serve(myWorker{}) }
//
// Serve speaks hashicorp/go-plugin's gRPC protocol with Corral's Handshake.
// A plugin must never write to stdout (go-plugin uses it for the handshake);
// use Logger, which writes to stderr, for diagnostics and Reporter.Log for
// the job's own log. The SDK exits the plugin when the host process dies.
package sdk

import (
	"context"

	"github.com/hashicorp/go-plugin"
)

// APIVersion is the newest version of the worker protocol this SDK
// implements. Version 2 runs every job of a plugin process over one
// multiplexed Session stream; version 1 opens one Run stream per job. A
// plugin serves both, and go-plugin settles on the newest version the host
// also speaks.
const APIVersion = 2

// MinAPIVersion is the oldest worker protocol version the SDK serves and
// the host accepts.
const MinAPIVersion = 1

// PluginName is the name under which the worker is dispensed over go-plugin.
const PluginName = "worker"

// Handshake is shared by the Corral host and its plugins. A binary launched
// without the cookie in its environment refuses to start, and the protocol
// version (MinAPIVersion to APIVersion) is negotiated through
// VersionedPlugins.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "CORRAL_PLUGIN",
	MagicCookieValue: "8b2f3c1e-corral-worker-plugin",
}

// Info describes a plugin to the host.
type Info struct {
	// Name is the plugin's own name (the host lists plugins by file name).
	Name string
	// Version is the plugin's version, free form (e.g. "1.2.0").
	Version string
	// Description is one line shown by `corral plugin list`.
	Description string
}

// Job is one attempt of a job handed to Worker.Run.
type Job struct {
	// ID is the job's ID.
	ID string
	// Attempt is the 1-based attempt number.
	Attempt int
	// Queue is the queue the job came from.
	Queue string
	// Payload is the job's payload, opaque to Corral.
	Payload []byte
}

// Stream names the log stream a line belongs to.
type Stream string

// Log streams.
const (
	// StreamPlugin is the plugin's own messages about the job.
	StreamPlugin Stream = "plugin"
	// StreamStdout is a child process's standard output.
	StreamStdout Stream = "stdout"
	// StreamStderr is a child process's standard error.
	StreamStderr Stream = "stderr"
)

// String returns the stream's wire name.
func (s Stream) String() string { return string(s) }

// Reporter streams a job's log lines and progress back to the host. It is
// safe for concurrent use; calls after Run has returned are dropped.
type Reporter interface {
	// Log adds a line to the job's log on the "plugin" stream.
	Log(line string)
	// Logf is Log with fmt.Sprintf formatting.
	Logf(format string, args ...any)
	// Output adds a line to the job's log on the given stream.
	Output(stream Stream, line string)
	// Progress reports how far the job is and a short message, shown by
	// `corral job status` and `job submit -wait`. percent is a float64 from
	// 0 to 100 (values outside are clamped), so fractions survive: a
	// constant works as is (r.Progress(50, "half")), an int needs a
	// conversion (r.Progress(float64(done*100/total), "...")).
	Progress(percent float64, msg string)
}

// Worker is what a plugin implements.
type Worker interface {
	// Info describes the plugin. It is called once after launch.
	Info() Info
	// Run executes one job attempt and returns its result bytes. ctx is
	// cancelled when the job is cancelled or its timeout expires; Run must
	// then return promptly, or the SDK exits the plugin process (the host
	// restarts it). Wrap an error with NonRetryable to fail the job without
	// further attempts. Run is called concurrently for concurrent jobs.
	Run(ctx context.Context, job Job, r Reporter) ([]byte, error)
}

// Configurer is implemented by workers that accept configuration (the
// plugin's `config {}` block in the agent configuration).
type Configurer interface {
	// Configure validates and applies the JSON-encoded config, which is empty
	// when the user gave none. It is called once, before any Run. An error
	// marks the plugin failed on the host, with the error as the reason.
	Configure(config []byte) error
}
