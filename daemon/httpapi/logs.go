package httpapi

import (
	"fmt"
	"net/http"
	"strconv"
)

// handleLogs serves GET /v1/jobs/{id}/logs?attempt=&follow=: the log is
// kept on the node that ran the attempt and fetched from it over the node
// plane.
func (h *API) handleLogs(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	authz, ok := h.authenticate(w, r, "queue:read on the job's queue")
	if !ok {
		return
	}
	attempt := 0
	if s := r.URL.Query().Get("attempt"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			writeError(w, badRequest("attempt=%q: must be a positive integer", s))
			return
		}
		attempt = n
	}
	follow := r.URL.Query().Get("follow") == "true" || r.URL.Query().Get("follow") == "1"
	job, ok := h.store.Get(id)
	if !ok {
		writeError(w, jobNotFound(id))
		return
	}
	if !h.check(w, authz, permQueueRead(job.Queue)) {
		return
	}
	if attempt == 0 {
		attempt = job.Attempt
	}
	if attempt == 0 || attempt > len(job.Attempts) {
		writeError(w, &httpError{code: http.StatusNotFound, err: fmt.Errorf("job %s has no attempt %d yet (it has run %d times)", id, attempt, len(job.Attempts))})
		return
	}
	node := job.Attempts[attempt-1].Node
	sw := &startWriter{w: w}
	if err := h.jobs.Log(r.Context(), node, id, attempt, follow, sw, sw.Flush); err != nil {
		if !sw.started {
			writeError(w, &httpError{code: http.StatusBadGateway, err: fmt.Errorf("log of job %s attempt %d on node %s: %w", id, attempt, node, err)})
		}
		return
	}
	sw.begin()
}

// startWriter writes the answer's header before its first byte, so an
// error before any output can still be answered as an error.
type startWriter struct {
	w       http.ResponseWriter
	started bool
}

func (s *startWriter) begin() {
	if !s.started {
		s.started = true
		s.w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		s.w.WriteHeader(http.StatusOK)
	}
}

func (s *startWriter) Write(p []byte) (int, error) {
	s.begin()
	return s.w.Write(p)
}

// Flush sends what was written so far.
func (s *startWriter) Flush() {
	s.begin()
	if f, ok := s.w.(http.Flusher); ok {
		f.Flush()
	}
}
