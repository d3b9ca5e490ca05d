package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"
)

const (
	// writeTimeout bounds one write; its answer is indeterminate after.
	writeTimeout = 5 * time.Second
	// readTimeout bounds one read.
	readTimeout = 3 * time.Second
	// submitTries bounds the tries of one unique key that stay
	// indeterminate.
	submitTries = 8
)

// workload is the clients' side: submits with unique keys (retried with
// the same key while the answer is indeterminate), cancels, retries of
// failed jobs, and reads through every node in every read mode.
type workload struct {
	rec    *recorder
	cl     *client
	agents []*agent
	seed   uint64
	logf   func(string, ...any)

	mu     sync.Mutex
	acked  []string        // job IDs acknowledged to a submit
	failed map[string]bool // jobs a read saw failed, to retry
}

// submitReq is the body of a submit.
type submitReq struct {
	Plugin      string          `json:"plugin"`
	Payload     json.RawMessage `json:"payload"`
	MaxAttempts int             `json:"max_attempts"`
	Timeout     string          `json:"timeout"`
	UniqueKey   string          `json:"unique_key"`
	UniqueFor   string          `json:"unique_for"`
}

// run starts clients clients and returns when ctx ends and they stopped.
func (w *workload) run(ctx context.Context, clients int) {
	w.failed = map[string]bool{}
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() { w.client(ctx, c) })
	}
	wg.Wait()
}

func (w *workload) client(ctx context.Context, c int) {
	rng := rand.New(rand.NewPCG(w.seed, uint64(c)+1))
	for n := 0; ctx.Err() == nil; n++ {
		switch p := rng.IntN(100); {
		case p < 55:
			w.submit(ctx, rng, c, fmt.Sprintf("k-%d-%d", c, n))
		case p < 65:
			// The newest jobs: most are still queued or running.
			if id := w.pickAcked(rng, 8); id != "" {
				w.write(ctx, rng, c, "cancel", id, http.MethodDelete, "/v1/jobs/"+id)
			}
		case p < 75:
			if id := w.pickFailed(rng); id != "" {
				w.write(ctx, rng, c, "retry", id, http.MethodPost, "/v1/jobs/"+id+"/retry")
			}
		default:
			if id := w.pickAcked(rng, 50); id != "" {
				w.read(ctx, rng, c, id)
			}
		}
		select {
		case <-time.After(time.Duration(50+rng.IntN(200)) * time.Millisecond):
		case <-ctx.Done():
		}
	}
}

func (w *workload) node(rng *rand.Rand) *agent { return w.agents[rng.IntN(len(w.agents))] }

// submit submits one job under key, trying again with the same key (on
// any node) while the answer is indeterminate.
func (w *workload) submit(ctx context.Context, rng *rand.Rand, c int, key string) {
	p := map[string]int{"sleep_ms": 50 + rng.IntN(600)}
	req := submitReq{Plugin: "chaos", MaxAttempts: 25, Timeout: "30s", UniqueKey: key, UniqueFor: "24h"}
	if rng.IntN(10) == 0 {
		// A job that fails its first attempt for good: a retry candidate.
		p["fail_attempts"], req.MaxAttempts = 1, 1
	}
	req.Payload, _ = json.Marshal(p)
	for try := 0; try < submitTries && ctx.Err() == nil; try++ {
		nd := w.node(rng)
		inv := w.rec.invoke(Op{Client: c, F: "submit", Node: nd.name, Key: key})
		a := w.cl.do(ctx, writeTimeout, http.MethodPost, nd.httpURL+"/v1/jobs", req)
		done := inv
		done.Type, done.Status, done.Err = a.outcome(), a.status, a.errText()
		if done.Type == opOK {
			var out struct {
				ID    string `json:"id"`
				Index uint64 `json:"index"`
			}
			if err := json.Unmarshal(a.body, &out); err != nil || out.ID == "" {
				done.Type, done.Err = opIndeterminate, fmt.Sprintf("undecodable answer %q", a.body)
			}
			done.Job, done.Index = out.ID, out.Index
		}
		w.rec.complete(done)
		switch done.Type {
		case opOK:
			w.mu.Lock()
			w.acked = append(w.acked, done.Job)
			w.mu.Unlock()
			return
		case opFail:
			if done.Status >= 400 && done.Status < 500 {
				w.logf("submit %s rejected: %d %s", key, done.Status, done.Err)
				return
			}
		}
		select { // not applied, or maybe: same key again, shortly
		case <-time.After(time.Duration(200+rng.IntN(800)) * time.Millisecond):
		case <-ctx.Done():
		}
	}
}

// write sends a cancel or retry of job id through a random node.
func (w *workload) write(ctx context.Context, rng *rand.Rand, c int, f, id, method, path string) {
	nd := w.node(rng)
	inv := w.rec.invoke(Op{Client: c, F: f, Node: nd.name, Job: id})
	a := w.cl.do(ctx, writeTimeout, method, nd.httpURL+path, nil)
	done := inv
	done.Type, done.Status, done.Err = a.outcome(), a.status, a.errText()
	if done.Type == opOK {
		var j struct {
			State   string `json:"state"`
			Attempt int    `json:"attempt"`
		}
		_ = json.Unmarshal(a.body, &j)
		done.State, done.Attempt, done.Index = j.State, j.Attempt, a.index()
		if f == "retry" {
			w.mu.Lock()
			delete(w.failed, id)
			w.mu.Unlock()
		}
	}
	w.rec.complete(done)
}

// read reads job id through a random node in a random mode.
func (w *workload) read(ctx context.Context, rng *rand.Rand, c int, id string) {
	nd := w.node(rng)
	mode, query := "default", ""
	switch rng.IntN(4) {
	case 0:
		mode, query = "stale", "?stale=true"
	case 1, 2:
		mode, query = "consistent", "?consistent=true"
	}
	inv := w.rec.invoke(Op{Client: c, F: "read", Node: nd.name, Job: id, Mode: mode})
	var j struct {
		State   string `json:"state"`
		Attempt int    `json:"attempt"`
	}
	a, ok := w.cl.getJSON(ctx, readTimeout, nd.httpURL+"/v1/jobs/"+id+query, &j)
	done := inv
	done.Status, done.Err = a.status, a.errText()
	done.Type = opFail
	if ok {
		done.Type, done.State, done.Attempt, done.Index = opOK, j.State, j.Attempt, a.index()
		if j.State == "failed" {
			w.mu.Lock()
			w.failed[id] = true
			w.mu.Unlock()
		}
	}
	w.rec.complete(done)
}

// pickAcked picks one of the last window acknowledged jobs: the recent
// ones are still moving.
func (w *workload) pickAcked(rng *rand.Rand, window int) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.acked) == 0 {
		return ""
	}
	n := len(w.acked)
	return w.acked[n-1-rng.IntN(min(n, window))]
}

func (w *workload) pickFailed(rng *rand.Rand) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	for id := range w.failed {
		if rng.IntN(2) == 0 {
			return id
		}
	}
	for id := range w.failed {
		return id
	}
	return ""
}
