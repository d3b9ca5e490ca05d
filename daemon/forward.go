package daemon

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/hashicorp/raft"
)

const (
	// leaderWait bounds how long a follower waits for a leader to be known.
	leaderWait = 5 * time.Second
	// catchUpWait bounds how long a forwarded write waits for the local FSM
	// to reach the leader's index (read-your-writes on the same node).
	catchUpWait = 2 * time.Second
)

// forwardClient carries forwarded writes to the leader; it keeps enough
// idle connections for many concurrent writers.
var forwardClient = &http.Client{
	Timeout:   60 * time.Second,
	Transport: newTransport(),
}

// newTransport is an HTTP transport for node-to-node calls.
func newTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 1024
	t.MaxIdleConnsPerHost = 256
	return t
}

// forwardAttempts bounds how often a follower retries a write that the
// leader rejected before applying it (leadership moved meanwhile).
const forwardAttempts = 3

// leaderOnly wraps a write handler: on the leader it runs h; on a follower
// it proxies the request to the leader's HTTP API.
func (a *Agent) leaderOnly(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if a.node.raft.State() == raft.Leader {
			h(w, r)
			return
		}
		if r.Header.Get(headerForwarded) != "" {
			writeError(w, ErrNotLeader)
			return
		}
		a.forward(w, r, h)
	}
}

// leaderHTTP returns the leader's HTTP address, waiting up to leaderWait
// for one to be elected.
func (a *Agent) leaderHTTP(ctx context.Context) (string, error) {
	deadline := time.Now().Add(leaderWait)
	for {
		if _, id := a.node.raft.LeaderWithID(); id != "" {
			if string(id) == a.nodeID {
				return a.httpAddr, nil
			}
			if addr, ok := a.httpAddrOf(string(id)); ok {
				return addr, nil
			}
		}
		if time.Now().After(deadline) {
			return "", ErrNoLeader
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
}

// forward proxies r to the leader and copies the answer back. A write the
// leader rejected unapplied (it had just lost leadership) is sent again to
// the new leader.
func (a *Agent) forward(w http.ResponseWriter, r *http.Request, h http.HandlerFunc) {
	body, err := io.ReadAll(io.LimitReader(r.Body, int64(a.cfg.Limits.MaxRequestBytes)+1))
	if err != nil {
		writeError(w, badRequest("read request body: %v", err))
		return
	}
	var resp *http.Response
	for attempt := 1; ; attempt++ {
		addr, err := a.leaderHTTP(r.Context())
		if err != nil {
			writeError(w, err)
			return
		}
		if addr == a.httpAddr {
			// This node became the leader meanwhile (e.g. just after start).
			r.Body = io.NopCloser(bytes.NewReader(body))
			h(w, r)
			return
		}
		resp, err = a.forwardOnce(r, addr, body)
		if err != nil {
			writeError(w, err)
			return
		}
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get(headerRetryable) == "" || attempt == forwardAttempts {
			break
		}
		resp.Body.Close()
		select { // let the cluster settle on its new leader
		case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
		case <-r.Context().Done():
			writeError(w, r.Context().Err())
			return
		}
	}
	defer resp.Body.Close()
	if idx, err := strconv.ParseUint(resp.Header.Get(headerIndex), 10, 64); err == nil && resp.StatusCode < 300 {
		ctx, cancel := context.WithTimeout(r.Context(), catchUpWait)
		waitFor(ctx, a.store, catchUpWait, func() bool { return a.store.Index() >= idx })
		cancel()
	}
	for k, vs := range resp.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

// forwardOnce sends one copy of a write to the leader at addr.
func (a *Agent) forwardOnce(r *http.Request, addr string, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(r.Context(), r.Method, "http://"+addr+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("forward to leader: %w", err)
	}
	req.Header = r.Header.Clone()
	req.Header.Set(headerForwarded, a.nodeID)
	resp, err := forwardClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("forward to leader at %s: %w: %w", addr, err, ErrNoLeader)
	}
	return resp, nil
}

// catchUpLimit bounds how long a read waits for the FSM after a restart.
const catchUpLimit = 10 * time.Second

// caughtUp wraps a read handler: until the FSM has applied everything that
// was in the raft log at start, reads wait (then answer 503).
func (a *Agent) caughtUp(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if a.node.raft.AppliedIndex() < a.startIndex {
			// Raft applies entries that never reach the FSM (no-ops,
			// configuration changes), so poll the applied index.
			deadline := time.Now().Add(catchUpLimit)
			for a.node.raft.AppliedIndex() < a.startIndex && time.Now().Before(deadline) && r.Context().Err() == nil {
				time.Sleep(20 * time.Millisecond)
			}
			if a.node.raft.AppliedIndex() < a.startIndex {
				writeError(w, &httpError{code: http.StatusServiceUnavailable,
					err: fmt.Errorf("node is still replaying its raft log (applied %d of %d); retry shortly", a.node.raft.AppliedIndex(), a.startIndex)})
				return
			}
		}
		h(w, r)
	}
}
