package main

import (
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"time"
)

// opType is the phase of a client operation in the history.
type opType string

// Operation phases (Jepsen's invoke / ok / fail / info).
const (
	opInvoke opType = "invoke"
	// opOK: the operation took effect (a 2xx answer).
	opOK opType = "ok"
	// opFail: it certainly did not take effect (a 4xx, or an answer that
	// says the write was rejected before raft).
	opFail opType = "fail"
	// opIndeterminate: it may or may not have taken effect (a timeout, a
	// broken connection, a 5xx).
	opIndeterminate opType = "indeterminate"
)

// Op is one line of the history: an invocation or its completion (same
// ID). T is nanoseconds since the start of the run.
type Op struct {
	ID     int64  `json:"id"`
	Client int    `json:"client"`
	Type   opType `json:"type"`
	// F is the operation: submit, cancel, retry or read.
	F    string `json:"f"`
	T    int64  `json:"t"`
	Node string `json:"node"`
	Key  string `json:"key,omitempty"`
	Job  string `json:"job,omitempty"`
	// Mode of a read: default, stale or consistent.
	Mode    string `json:"mode,omitempty"`
	State   string `json:"state,omitempty"`
	Attempt int    `json:"attempt,omitempty"`
	Index   uint64 `json:"index,omitempty"`
	Status  int    `json:"status,omitempty"`
	Err     string `json:"err,omitempty"`
}

// recorder appends operations to the history file and keeps them for the
// checker.
type recorder struct {
	start time.Time

	mu   sync.Mutex
	enc  *json.Encoder
	f    *os.File
	ops  []Op
	next int64
}

func newRecorder(path string, start time.Time) (*recorder, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	return &recorder{start: start, f: f, enc: json.NewEncoder(f)}, nil
}

func (r *recorder) since() int64 { return int64(time.Since(r.start)) }

// invoke records the start of an operation and returns it with its ID.
func (r *recorder) invoke(op Op) Op {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.next++
	op.ID, op.Type, op.T = r.next, opInvoke, r.since()
	r.add(op)
	return op
}

// complete records the end of the invoked operation inv: done is the
// completion with its type and answer fields set.
func (r *recorder) complete(done Op) {
	r.mu.Lock()
	defer r.mu.Unlock()
	done.T = r.since()
	r.add(done)
}

func (r *recorder) add(op Op) {
	r.ops = append(r.ops, op)
	_ = r.enc.Encode(op)
}

// history returns a copy of everything recorded.
func (r *recorder) history() []Op {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Op(nil), r.ops...)
}

func (r *recorder) close() error { return r.f.Close() }
