package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/corral-dev/corral/daemon/api"
	"github.com/corral-dev/corral/daemon/server"
	"github.com/corral-dev/corral/queue"
)

const (
	// headerIndex carries the raft index of a read (Consul's X-Consul-Index).
	headerIndex = "X-Corral-Index"
	// headerKnownLeader says whether the serving node knows a leader.
	headerKnownLeader = "X-Corral-Known-Leader"
	// headerLastContact is how many ms ago a follower last heard from the
	// leader (0 on the leader).
	headerLastContact = "X-Corral-Last-Contact"
	// headerRetryable marks an error answer whose write was not applied.
	headerRetryable = "X-Corral-Retryable"
	// maxBlockingWait caps ?wait= of blocking queries.
	maxBlockingWait = 5 * time.Minute
	// defaultBlockingWait applies when ?index= is given without ?wait=.
	defaultBlockingWait = 5 * time.Minute
)

// httpError is an error with the status code the API answers with.
type httpError struct {
	code int
	err  error
}

func (e *httpError) Error() string { return e.err.Error() }
func (e *httpError) Unwrap() error { return e.err }

func badRequest(format string, args ...any) error {
	return &httpError{code: http.StatusBadRequest, err: fmt.Errorf(format, args...)}
}

// statusOf maps an error onto an HTTP status.
func statusOf(err error) int {
	var he *httpError
	switch {
	case errors.As(err, &he):
		return he.code
	case errors.Is(err, queue.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, queue.ErrACLBootstrapped):
		return http.StatusConflict
	case errors.Is(err, queue.ErrACLNotFound):
		return http.StatusNotFound
	case errors.Is(err, queue.ErrBadACL):
		return http.StatusBadRequest
	case errors.Is(err, queue.ErrTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, queue.ErrBadSpec), errors.Is(err, queue.ErrBadState), errors.Is(err, queue.ErrBadQueue),
		errors.Is(err, queue.ErrBadFilter), errors.Is(err, queue.ErrBadRate),
		errors.Is(err, queue.ErrBadPeriodic), errors.Is(err, queue.ErrBadTick):
		return http.StatusBadRequest
	case errors.Is(err, queue.ErrQueueNotFound), errors.Is(err, queue.ErrPeriodicNotFound):
		return http.StatusNotFound
	case errors.Is(err, queue.ErrQueueNotEmpty), errors.Is(err, queue.ErrAlreadyFired):
		return http.StatusConflict
	case errors.Is(err, queue.ErrTerminal), errors.Is(err, queue.ErrNotRetryable), errors.Is(err, queue.ErrStaleToken):
		return http.StatusConflict
	case errors.Is(err, server.ErrNoLeader), errors.Is(err, server.ErrNotLeader), errors.Is(err, server.ErrLeadershipLost),
		errors.Is(err, server.ErrShuttingDown), errors.Is(err, server.ErrLeaderChanged):
		return http.StatusServiceUnavailable
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// writeJSON answers with v as JSON; index > 0 sets X-Corral-Index.
func writeJSON(w http.ResponseWriter, code int, v any, index uint64) {
	w.Header().Set("Content-Type", "application/json")
	if index > 0 {
		w.Header().Set(headerIndex, strconv.FormatUint(index, 10))
	}
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// writeError answers {"error": ...} with the status that fits err. A
// write that was rejected before reaching raft is marked safe to retry.
func writeError(w http.ResponseWriter, err error) {
	if errors.Is(err, server.ErrNotLeader) {
		w.Header().Set(headerRetryable, "true")
	}
	writeJSON(w, statusOf(err), api.Error{Error: err.Error()}, 0)
}

// decodeBody decodes a JSON request body of at most limit bytes, rejecting
// unknown fields and trailing data.
func decodeBody(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	body := http.MaxBytesReader(w, r.Body, limit)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			return &httpError{code: http.StatusRequestEntityTooLarge,
				err: fmt.Errorf("request body exceeds the %d-byte limit (limits.max_request_bytes); send fewer jobs per request", mbe.Limit)}
		case errors.Is(err, io.EOF):
			return badRequest("empty request body: send a JSON object")
		}
		return badRequest("malformed JSON body: %v", err)
	}
	if dec.More() {
		return badRequest("malformed JSON body: trailing data after the object")
	}
	return nil
}

// blockingQuery reads ?index=N&wait=D. ok is false when index is absent.
func blockingQuery(r *http.Request) (minIndex uint64, wait time.Duration, ok bool, err error) {
	q := r.URL.Query()
	s := q.Get("index")
	if s == "" {
		return 0, 0, false, nil
	}
	minIndex, err = strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, 0, false, badRequest("index=%q: must be a non-negative integer", s)
	}
	if wait, err = parseWait(q.Get("wait"), defaultBlockingWait); err != nil {
		return 0, 0, false, err
	}
	return minIndex, wait, true, nil
}

// parseWait reads a ?wait=D (def when absent), capped at maxBlockingWait.
func parseWait(ws string, def time.Duration) (time.Duration, error) {
	if ws == "" {
		return min(def, maxBlockingWait), nil
	}
	wait, err := time.ParseDuration(ws)
	if err != nil || wait < 0 {
		return 0, badRequest("wait=%q: must be a duration such as 30s", ws)
	}
	return min(wait, maxBlockingWait), nil
}

// waitFor blocks until ready returns true (checked on every store change),
// the wait elapses, or ctx ends. It returns ready's last answer.
func waitFor(ctx context.Context, store Store, wait time.Duration, ready func() bool) bool {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		_, ch := store.Watch()
		if ready() {
			return true
		}
		select {
		case <-ch:
		case <-timer.C:
			return ready()
		case <-ctx.Done():
			return false
		}
	}
}
