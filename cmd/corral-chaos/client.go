package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// client talks to the agents' HTTP API from the client side of the
// network.
type client struct {
	hc *http.Client
}

func newClient(n network) *client {
	t := &http.Transport{
		DialContext:         n.dial,
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     30 * time.Second,
	}
	return &client{hc: &http.Client{Transport: t}}
}

// answer is one HTTP exchange: err is set when no answer came back.
type answer struct {
	status int
	header http.Header
	body   []byte
	err    error
}

// index is the X-Corral-Index of the answer (0 if absent).
func (a answer) index() uint64 {
	n, _ := strconv.ParseUint(a.header.Get("X-Corral-Index"), 10, 64)
	return n
}

// outcome classifies the answer of a write: a 2xx took effect; a 4xx,
// or a 503 marked retryable (rejected before raft), did not; anything else
// (no answer, timeout, other 5xx) may have.
func (a answer) outcome() opType {
	switch {
	case a.err != nil:
		return opIndeterminate
	case a.status >= 200 && a.status < 300:
		return opOK
	case a.status >= 400 && a.status < 500:
		return opFail
	case a.status == http.StatusServiceUnavailable && a.header.Get("X-Corral-Retryable") != "":
		return opFail
	}
	return opIndeterminate
}

// errText is a short description of a failed exchange.
func (a answer) errText() string {
	if a.err != nil {
		return a.err.Error()
	}
	if a.status >= 300 {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(a.body, &e) == nil && e.Error != "" {
			return e.Error
		}
		return string(bytes.TrimSpace(a.body))
	}
	return ""
}

// do sends one request with a timeout and reads the whole answer.
func (c *client) do(ctx context.Context, timeout time.Duration, method, url string, body any) answer {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return answer{err: err}
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return answer{err: err}
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return answer{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return answer{err: fmt.Errorf("read answer: %w", err)}
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: b}
}

// getJSON reads url into out; false on any failure.
func (c *client) getJSON(ctx context.Context, timeout time.Duration, url string, out any) (answer, bool) {
	a := c.do(ctx, timeout, http.MethodGet, url, nil)
	if a.err != nil || a.status != http.StatusOK {
		return a, false
	}
	return a, json.Unmarshal(a.body, out) == nil
}
