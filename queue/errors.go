package queue

import "errors"

// Errors returned in Results and by the store. Messages are lower case and
// say what to do where that is not obvious.
var (
	// ErrNotFound means no job has that ID (it may have been purged).
	ErrNotFound = errors.New("job not found")
	// ErrStaleToken means a report or heartbeat carried a fencing token that
	// no longer matches the job's lease: a newer attempt owns the job.
	ErrStaleToken = errors.New("stale fencing token: the lease was lost and a newer attempt owns the job")
	// ErrTerminal means the job already ended and cannot change.
	ErrTerminal = errors.New("job already finished")
	// ErrNotRetryable means only failed or cancelled jobs can be retried.
	ErrNotRetryable = errors.New("only failed or cancelled jobs can be retried")
	// ErrBadSpec means a submitted job is invalid; it is wrapped with details.
	ErrBadSpec = errors.New("invalid job")
	// ErrBadQueue means a queue name or queue setting is invalid; it is
	// wrapped with details.
	ErrBadQueue = errors.New("invalid queue setting")
	// ErrBadSnapshot means a snapshot stream is corrupt or of an unknown
	// version; Restore left the state untouched.
	ErrBadSnapshot = errors.New("corrupt or unsupported snapshot")
	// ErrBadState means an unknown state name.
	ErrBadState = errors.New("unknown state")
	// ErrBadCommand means an entry could not be decoded.
	ErrBadCommand = errors.New("malformed command")
)
