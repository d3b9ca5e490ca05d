// Command chaosplugin is the worker plugin of the corral-chaos harness.
// Every execution of a job appends one JSON line to a side-effect log (job,
// attempt, node, a random nonce, start, end, outcome) before it returns,
// and its result carries the same nonce, so the checker can tell which
// execution a recorded result came from.
//
// Config: {"log": "/path/effects.jsonl", "node": "n1"}. Payload:
// {"sleep_ms": N, "fail_attempts": K}: sleep N ms, then fail while the
// attempt is at most K.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/corral-dev/corral/plugins/sdk"
)

// Effect is one line of the side-effect log.
type Effect struct {
	Job     string    `json:"job"`
	Attempt int       `json:"attempt"`
	Node    string    `json:"node"`
	Nonce   string    `json:"nonce"`
	Start   time.Time `json:"start"`
	End     time.Time `json:"end"`
	Outcome string    `json:"outcome"`
}

type config struct {
	Log  string `json:"log"`
	Node string `json:"node"`
}

type payload struct {
	SleepMS      int `json:"sleep_ms"`
	FailAttempts int `json:"fail_attempts"`
}

type worker struct {
	mu   sync.Mutex
	f    *os.File
	node string
}

func (*worker) Info() sdk.Info {
	return sdk.Info{Name: "chaos", Version: "1.0.0", Description: "corral-chaos test plugin: logs every execution"}
}

func (w *worker) Configure(raw []byte) error {
	var c config
	if err := sdk.DecodeConfig(raw, &c); err != nil {
		return err
	}
	if c.Log == "" || c.Node == "" {
		return errors.New("config needs log and node")
	}
	f, err := os.OpenFile(c.Log, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("open side-effect log: %w", err)
	}
	w.f, w.node = f, c.Node
	return nil
}

func (w *worker) Run(ctx context.Context, job sdk.Job, r sdk.Reporter) ([]byte, error) {
	if w.f == nil {
		return nil, sdk.NonRetryable(errors.New("plugin not configured"))
	}
	var p payload
	if err := json.Unmarshal(job.Payload, &p); err != nil {
		return nil, sdk.NonRetryable(fmt.Errorf("payload: %w", err))
	}
	nonce := make([]byte, 8)
	_, _ = rand.Read(nonce)
	e := Effect{Job: job.ID, Attempt: job.Attempt, Node: w.node, Nonce: hex.EncodeToString(nonce), Start: time.Now().UTC()}
	var err error
	select {
	case <-time.After(time.Duration(p.SleepMS) * time.Millisecond):
	case <-ctx.Done():
		err = ctx.Err()
	}
	e.End = time.Now().UTC()
	switch {
	case err != nil:
		e.Outcome = "interrupted"
	case job.Attempt <= p.FailAttempts:
		e.Outcome, err = "failed", fmt.Errorf("planned failure of attempt %d", job.Attempt)
	default:
		e.Outcome = "succeeded"
	}
	line, _ := json.Marshal(e)
	w.mu.Lock()
	_, werr := w.f.Write(append(line, '\n')) // one write: lines never interleave
	w.mu.Unlock()
	if werr != nil {
		return nil, fmt.Errorf("side-effect log: %w", werr)
	}
	if err != nil {
		return nil, err
	}
	r.Logf("attempt %d on %s: nonce %s", job.Attempt, w.node, e.Nonce)
	return json.Marshal(map[string]any{"nonce": e.Nonce, "node": w.node, "attempt": job.Attempt})
}

func main() { sdk.Serve(&worker{}) }
