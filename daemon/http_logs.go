package daemon

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/corral-dev/corral/queue"
)

// followPoll is how often a followed log checks for new lines.
const followPoll = 200 * time.Millisecond

// handleLogs serves GET /v1/jobs/{id}/logs?attempt=&follow=: the log is
// kept on the node that ran the attempt; other nodes proxy to it.
func (a *Agent) handleLogs(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
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
	if r.Header.Get(headerForwarded) != "" && attempt > 0 {
		// The forwarding node found that this node ran the attempt; this
		// node's replica may not have caught up with the claim yet, so the
		// log file is the authority.
		a.serveLog(w, r, id, attempt, follow)
		return
	}
	job, ok := a.store.Get(id)
	if !ok {
		writeError(w, &httpError{code: http.StatusNotFound, err: fmt.Errorf("job %s not found", id)})
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
	if node == a.cfg.NodeName {
		a.serveLog(w, r, id, attempt, follow)
		return
	}
	if r.Header.Get(headerForwarded) != "" {
		writeError(w, &httpError{code: http.StatusNotFound, err: fmt.Errorf("log of job %s attempt %d is not on node %s", id, attempt, a.cfg.NodeName)})
		return
	}
	addr, ok := a.httpAddrOfNode(node)
	if !ok {
		writeError(w, &httpError{code: http.StatusBadGateway, err: fmt.Errorf("log of job %s attempt %d is on node %s, which is not reachable", id, attempt, node)})
		return
	}
	q := r.URL.Query()
	q.Set("attempt", strconv.Itoa(attempt))
	a.proxyStream(w, r, addr, r.URL.EscapedPath()+"?"+q.Encode())
}

// serveLog streams a local log file, following it while the attempt runs.
func (a *Agent) serveLog(w http.ResponseWriter, r *http.Request, id string, attempt int, follow bool) {
	f, err := a.logs.open(id, attempt)
	behindUntil := time.Now().Add(catchUpWait)
	for errors.Is(err, os.ErrNotExist) && follow && a.attemptMayLog(id, attempt, behindUntil) {
		// Claimed but not started yet: the log file comes in a moment.
		select {
		case <-time.After(followPoll):
		case <-r.Context().Done():
			return
		}
		f, err = a.logs.open(id, attempt)
	}
	if errors.Is(err, os.ErrNotExist) {
		// The log file is made at the first line: the attempt printed
		// nothing.
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		return
	}
	if err != nil {
		writeError(w, err)
		return
	}
	defer f.Close()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	for {
		if _, err := io.Copy(w, f); err != nil {
			return
		}
		if flusher != nil {
			flusher.Flush()
		}
		if !follow || !a.attemptRunning(id, attempt) {
			// One last copy catches lines written just before the end.
			_, _ = io.Copy(w, f)
			return
		}
		select {
		case <-time.After(followPoll):
		case <-r.Context().Done():
			return
		}
	}
}

// attemptMayLog reports whether attempt of the job may still write its
// first log line here: it runs (see attemptRunning), or, until
// behindUntil, this node has not yet heard of it — the node that forwarded
// a follow may have seen the claim before this one's dispatcher and
// replica did.
func (a *Agent) attemptMayLog(id string, attempt int, behindUntil time.Time) bool {
	if a.attemptRunning(id, attempt) {
		return true
	}
	j, ok := a.store.Get(id)
	return (!ok || j.Attempt < attempt) && time.Now().Before(behindUntil)
}

// attemptRunning reports whether attempt of the job still runs: on this
// node's dispatcher (which knows before the replica does), or per the
// replicated state.
func (a *Agent) attemptRunning(id string, attempt int) bool {
	if a.dispatcher != nil && a.dispatcher.runs(id, attempt) {
		return true
	}
	j, ok := a.store.Get(id)
	return ok && j.State == queue.StateRunning && j.Attempt == attempt
}

// proxyStream forwards a GET of uri (path and query) to another node and
// streams the answer.
func (a *Agent) proxyStream(w http.ResponseWriter, r *http.Request, addr, uri string) {
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, "http://"+addr+uri, nil)
	if err != nil {
		writeError(w, err)
		return
	}
	req.Header.Set(headerForwarded, a.nodeID)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		writeError(w, &httpError{code: http.StatusBadGateway, err: fmt.Errorf("node at %s: %w", addr, err)})
		return
	}
	defer resp.Body.Close()
	for k, vs := range resp.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	flusher, _ := w.(http.Flusher)
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			if flusher != nil {
				flusher.Flush()
			}
		}
		if err != nil {
			return
		}
	}
}
