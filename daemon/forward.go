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
	Timeout:   maxBlockingWait + time.Minute, // a submit may wait for its job
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
// it proxies the request to the leader's HTTP API. A write refused unapplied
// because leadership moved meanwhile (on this node or on the leader it was
// forwarded to) is sent again to the new leader, so a client never sees a
// leader change it could not have caused.
func (a *Agent) leaderOnly(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(headerForwarded) != "" {
			// The forwarding follower does the retrying.
			if a.node.Raft.State() != raft.Leader {
				writeError(w, ErrNotLeader)
				return
			}
			h(w, r)
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
		if _, id := a.node.Raft.LeaderWithID(); id != "" {
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

// forward runs a write on the leader, here (h) or by proxy, and copies the
// answer back. An answer that says the write was not applied because the
// node was no longer the leader is not passed on while attempts remain: the
// write goes to the new leader instead.
func (a *Agent) forward(w http.ResponseWriter, r *http.Request, h http.HandlerFunc) {
	body, err := io.ReadAll(io.LimitReader(r.Body, int64(a.cfg.Limits.MaxRequestBytes)+1))
	if err != nil {
		writeError(w, badRequest("read request body: %v", err))
		return
	}
	for attempt := 1; ; attempt++ {
		addr, err := a.leaderHTTP(r.Context())
		if err != nil {
			writeError(w, err)
			return
		}
		var ans *answer
		if addr == a.httpAddr {
			ans = &answer{header: http.Header{}, code: http.StatusOK}
			r.Body = io.NopCloser(bytes.NewReader(body))
			h(ans, r)
		} else if ans, err = a.forwardOnce(r, addr, body); err != nil {
			writeError(w, err)
			return
		}
		if ans.code != http.StatusServiceUnavailable || ans.header.Get(headerRetryable) == "" || attempt == forwardAttempts {
			if addr != a.httpAddr {
				a.catchUp(r.Context(), ans)
			}
			ans.copyTo(w)
			return
		}
		select { // let the cluster settle on its new leader
		case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
		case <-r.Context().Done():
			writeError(w, r.Context().Err())
			return
		}
	}
}

// catchUp waits (briefly) until the local FSM has applied the index the
// leader answered with, so a client reads its own write on this node.
func (a *Agent) catchUp(ctx context.Context, ans *answer) {
	idx, err := strconv.ParseUint(ans.header.Get(headerIndex), 10, 64)
	if err != nil || ans.code >= 300 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, catchUpWait)
	defer cancel()
	waitFor(ctx, a.store, catchUpWait, func() bool { return a.store.Index() >= idx })
}

// answer is a buffered HTTP answer: a write's answer is held back until it
// is known not to need another attempt. Write answers are small.
type answer struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (b *answer) Header() http.Header         { return b.header }
func (b *answer) Write(p []byte) (int, error) { return b.body.Write(p) }
func (b *answer) WriteHeader(code int)        { b.code = code }

// copyTo sends the buffered answer to w.
func (b *answer) copyTo(w http.ResponseWriter) {
	for k, vs := range b.header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.WriteHeader(b.code)
	_, _ = w.Write(b.body.Bytes())
}

// forwardOnce sends one copy of a write to the leader at addr and reads
// its answer.
func (a *Agent) forwardOnce(r *http.Request, addr string, body []byte) (*answer, error) {
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
	defer resp.Body.Close()
	ans := &answer{header: resp.Header, code: resp.StatusCode}
	if _, err := io.Copy(&ans.body, resp.Body); err != nil {
		return nil, fmt.Errorf("forward to leader at %s: read answer: %w: %w", addr, err, ErrNoLeader)
	}
	return ans, nil
}

// catchUpLimit bounds how long a read waits for the FSM after a restart.
const catchUpLimit = 10 * time.Second

// caughtUp wraps a read handler: until the FSM has applied everything that
// was in the raft log at start, reads wait (then answer 503).
func (a *Agent) caughtUp(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if a.node.Raft.AppliedIndex() < a.startIndex {
			// Raft applies entries that never reach the FSM (no-ops,
			// configuration changes), so poll the applied index.
			deadline := time.Now().Add(catchUpLimit)
			for a.node.Raft.AppliedIndex() < a.startIndex && time.Now().Before(deadline) && r.Context().Err() == nil {
				time.Sleep(20 * time.Millisecond)
			}
			if a.node.Raft.AppliedIndex() < a.startIndex {
				writeError(w, &httpError{code: http.StatusServiceUnavailable,
					err: fmt.Errorf("node is still replaying its raft log (applied %d of %d); retry shortly", a.node.Raft.AppliedIndex(), a.startIndex)})
				return
			}
		}
		h(w, r)
	}
}
