package host

import "errors"

// Errors returned by Manager.Run and New. Match them with errors.Is; the
// returned errors wrap them with details.
var (
	// ErrUnknownPlugin means no plugin of that name was found or configured.
	ErrUnknownPlugin = errors.New("unknown plugin")
	// ErrNotReady means the plugin exists but is restarting or failed.
	ErrNotReady = errors.New("plugin not ready")
	// ErrNoSlot means every concurrency slot of the plugin is busy.
	ErrNoSlot = errors.New("no free plugin slot")
	// ErrTimeout means the call ran past RunRequest.Timeout.
	ErrTimeout = errors.New("timed out")
	// ErrCrashed means the plugin process died or broke the protocol during
	// the call; the plugin is restarted.
	ErrCrashed = errors.New("plugin crashed")
	// ErrCancelled means the caller's context ended during the call.
	ErrCancelled = errors.New("job cancelled")
	// ErrClosed means the Manager was closed.
	ErrClosed = errors.New("plugin manager closed")
	// ErrInvalidConfig means Config failed validation in New.
	ErrInvalidConfig = errors.New("invalid plugin manager config")
)

// JobError is an error returned by the plugin's own Run: the job failed.
type JobError struct {
	// Message is the plugin's error message.
	Message string
	// NonRetryable is set when the plugin asked for no further attempts.
	NonRetryable bool
}

// Error implements error.
func (e *JobError) Error() string { return e.Message }
