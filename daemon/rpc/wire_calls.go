package rpc

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/corral-dev/corral/queue"
)

// The node-to-node methods.
const (
	// MethodApply: a follower forwards commands to the leader
	// (ApplyRequest → ApplyResponse).
	MethodApply Method = iota + 1
	// MethodDispatch: a worker's dispatch stream to the leader (Hello,
	// then Up and Down messages).
	MethodDispatch
	// MethodRead: a consistent read, answered by the leader after it
	// verified its leadership (ReadRequest → ReadResponse).
	MethodRead
	// MethodProgress: the progress of a job running on the called node
	// (ProgressRequest → ProgressResponse).
	MethodProgress
	// MethodLogs: an attempt's log from the node that ran it
	// (LogsRequest, then LogChunk frames until the stream ends).
	MethodLogs
	// MethodStats: the called node's raft stats for autopilot
	// (StatsRequest → StatsResponse).
	MethodStats
)

var methodNames = map[Method]string{
	MethodApply: "apply", MethodDispatch: "dispatch", MethodRead: "read",
	MethodProgress: "progress", MethodLogs: "logs", MethodStats: "stats",
}

// ErrBadRequest means a peer sent a message that breaks the protocol's
// bounds; the stream is closed.
var ErrBadRequest = errors.New("bad request")

// ApplyRequest carries a follower's commands, encoded with the queue's
// binary codec (an Entry whose time the leader sets).
type ApplyRequest struct {
	Entry []byte
}

// Commands decodes the request's commands.
func (r *ApplyRequest) Commands() ([]queue.Command, error) {
	e, err := queue.Decode(r.Entry)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	return e.Cmds, nil
}

// NewApplyRequest encodes commands for the leader.
func NewApplyRequest(cmds []queue.Command) (*ApplyRequest, error) {
	b, err := queue.Encode(queue.Entry{Cmds: cmds})
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
}

// Result is a queue.Result on the wire.
type Result struct {
	Err       *Error
	Submitted []Submitted
	Job       *queue.Job
	Count     int
}

// Submitted is a queue.Submitted on the wire.
type Submitted struct {
	ID       string
	Existing bool
	Err      *Error
}

// FromResult converts a queue result for the wire (the parts a forwarded
// write can produce).
func FromResult(r queue.Result) Result {
	out := Result{Err: EncodeError(r.Err), Job: r.Job, Count: r.Count}
	for _, s := range r.Submitted {
		out.Submitted = append(out.Submitted, Submitted{ID: s.ID, Existing: s.Existing, Err: EncodeError(s.Err)})
	}
	return out
}

// Result converts back; errors match their sentinels with errors.Is.
func (r *Result) Result() queue.Result {
	out := queue.Result{Err: r.Err.Decode(), Job: r.Job, Count: r.Count}
	for _, s := range r.Submitted {
		out.Submitted = append(out.Submitted, queue.Submitted{ID: s.ID, Existing: s.Existing, Err: s.Err.Decode()})
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

// Error is an error on the wire: a code that names a registered sentinel
// (so errors.Is works on the other side) and the message.
type Error struct {
	Code    string
	Message string
}

var (
	errMu    sync.RWMutex
	errCodes = map[string]error{}
)

// RegisterError names a sentinel error for the wire: an error that wraps it
// arrives on the other side as an error that wraps it too. Register the
// same codes on every node, at init.
func RegisterError(code string, sentinel error) {
	errMu.Lock()
	defer errMu.Unlock()
	errCodes[code] = sentinel
}

func init() {
	for code, err := range map[string]error{
		"not_found": queue.ErrNotFound, "stale_token": queue.ErrStaleToken, "terminal": queue.ErrTerminal,
		"not_retryable": queue.ErrNotRetryable, "bad_spec": queue.ErrBadSpec, "bad_queue": queue.ErrBadQueue,
		"bad_state": queue.ErrBadState, "bad_command": queue.ErrBadCommand, "bad_request": ErrBadRequest,
	} {
		RegisterError(code, err)
	}
}

// EncodeError converts err for the wire (nil for nil).
func EncodeError(err error) *Error {
	if err == nil {
		return nil
	}
	errMu.RLock()
	defer errMu.RUnlock()
	for code, sentinel := range errCodes {
		if errors.Is(err, sentinel) {
			return &Error{Code: code, Message: err.Error()}
		}
	}
	return &Error{Message: err.Error()}
}

// Decode converts back (nil for nil): the message as sent, matching the
// sentinel of its code.
func (e *Error) Decode() error {
	if e == nil {
		return nil
	}
	errMu.RLock()
	sentinel := errCodes[e.Code]
	errMu.RUnlock()
	return &remoteErr{msg: e.Message, sentinel: sentinel}
}

// remoteErr is an error that came over the wire.
type remoteErr struct {
	msg      string
	sentinel error
}

func (e *remoteErr) Error() string { return e.msg }

func (e *remoteErr) Is(target error) bool { return e.sentinel != nil && target == e.sentinel }
