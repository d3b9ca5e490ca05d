package rpc

import (
	"errors"
	"fmt"
	"time"

	"github.com/corral-dev/corral/queue"
)

// ErrBadRequest means a peer sent a message that breaks the protocol's
// bounds; the stream is closed.
var ErrBadRequest = errors.New("bad request")

// ApplyRequest carries a follower's commands, encoded with the queue's
// binary codec (an Entry whose time the leader sets).
type ApplyRequest struct {
	Entry []byte
	// Wait, when set, makes the leader wait up to it for the jobs the
	// commands submit to end, and answer with them.
	Wait time.Duration
}

// Commands decodes the request's commands.
func (r *ApplyRequest) Commands() ([]queue.Command, error) {
	e, err := queue.Decode(r.Entry)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	return e.Cmds, nil
}

// NewApplyRequest encodes commands for the leader. The entry's time is
// only there for the codec: the leader stamps the entry that carries them.
func NewApplyRequest(cmds []queue.Command) (*ApplyRequest, error) {
	b, err := queue.Encode(queue.Entry{Now: time.Now().UTC(), Cmds: cmds})
	if err != nil {
		return nil, fmt.Errorf("encode commands: %w", err)
	}
	return &ApplyRequest{Entry: b}, nil
}

// ApplyResponse answers an ApplyRequest: one result per command and the
// raft index of the entry that carried the last of them.
type ApplyResponse struct {
	Index   uint64
	Results []Result
	// Jobs are the submitted jobs after the request's Wait (see
	// ApplyRequest.Wait), in the order of the submits.
	Jobs []*queue.Job
}

// Result is a queue.Result on the wire.
type Result struct {
	Err       *RemoteError
	Submitted []Submitted
	Job       *queue.Job
	Count     int
	// More and Resume answer a bulk command (see queue.Result).
	More   bool
	Resume *queue.BulkFilter
}

// Submitted is a queue.Submitted on the wire.
type Submitted struct {
	ID       string
	Existing bool
	Err      *RemoteError
}

// FromResult converts a queue result for the wire (the parts a forwarded
// write can produce).
func FromResult(r queue.Result) Result {
	out := Result{Err: EncodeError(r.Err), Job: r.Job, Count: r.Count, More: r.More, Resume: r.Resume}
	for _, s := range r.Submitted {
		out.Submitted = append(out.Submitted, Submitted{ID: s.ID, Existing: s.Existing, Err: EncodeError(s.Err)})
	}
	return out
}

// Result converts back; errors match their sentinels with errors.Is.
func (r *Result) Result() queue.Result {
	out := queue.Result{Err: decodeError(r.Err), Job: r.Job, Count: r.Count, More: r.More, Resume: r.Resume}
	for _, s := range r.Submitted {
		out.Submitted = append(out.Submitted, queue.Submitted{ID: s.ID, Existing: s.Existing, Err: decodeError(s.Err)})
	}
	return out
}

// ReadRequest asks the leader for a job, read after it verified its
// leadership.
type ReadRequest struct {
	ID string
}

// ReadResponse answers a ReadRequest; Job is nil when there is none.
type ReadResponse struct {
	Job   *queue.Job
	Index uint64
}

// ProgressRequest asks a node for the progress of a job it runs.
type ProgressRequest struct {
	ID string
}

// ProgressResponse answers a ProgressRequest; OK is false when the node
// has no progress for the job.
type ProgressResponse struct {
	OK      bool
	Percent float64
	Message string
}

// LogsRequest asks a node for an attempt's log; with Follow the stream
// stays open while the attempt runs.
type LogsRequest struct {
	ID      string
	Attempt int
	Follow  bool
}

// LogChunk is a piece of a log.
type LogChunk struct {
	Data []byte
}

// StatsRequest asks a node for its raft stats.
type StatsRequest struct{}

// StatsResponse is what autopilot needs to judge a server's health.
type StatsResponse struct {
	LastContact time.Duration
	LastTerm    uint64
	LastIndex   uint64
}

// EncodeError converts an error inside a message, such as a command's
// result, for the wire (nil for nil): it arrives as a *RemoteError that
// matches its registered sentinel with errors.Is.
func EncodeError(err error) *RemoteError {
	if err == nil {
		return nil
	}
	w := toWire(err)
	return &RemoteError{Code: w.Code, Message: w.Message}
}

// decodeError turns an error inside a message back into an error (nil for
// nil, never a typed nil).
func decodeError(e *RemoteError) error {
	if e == nil {
		return nil
	}
	return e
}

func init() {
	for code, err := range map[string]error{
		"job_not_found": queue.ErrNotFound, "stale_token": queue.ErrStaleToken, "terminal": queue.ErrTerminal,
		"not_retryable": queue.ErrNotRetryable, "bad_spec": queue.ErrBadSpec, "bad_queue": queue.ErrBadQueue,
		"bad_state": queue.ErrBadState, "bad_command": queue.ErrBadCommand, "bad_request": ErrBadRequest,
		"bad_filter": queue.ErrBadFilter, "queue_not_found": queue.ErrQueueNotFound, "queue_not_empty": queue.ErrQueueNotEmpty,
		"too_large": queue.ErrTooLarge, "bad_snapshot": queue.ErrBadSnapshot, "bad_rate": queue.ErrBadRate,
		"bad_periodic": queue.ErrBadPeriodic, "periodic_not_found": queue.ErrPeriodicNotFound,
		"already_fired": queue.ErrAlreadyFired, "bad_tick": queue.ErrBadTick,
	} {
		RegisterError(code, err)
	}
}
