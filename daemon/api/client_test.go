package api

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// seen is one request the fake server received.
type seen struct {
	Method, Path, Query, Token, Body string
}

// fakeServer answers every request with the status, header and body set
// for its "METHOD path" and records what it got.
type fakeServer struct {
	mu      sync.Mutex
	reqs    []seen
	answers map[string]func(w http.ResponseWriter, r *http.Request)
}

func newFake(t *testing.T) (*fakeServer, *Client) {
	t.Helper()
	f := &fakeServer{answers: map[string]func(http.ResponseWriter, *http.Request){}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.reqs = append(f.reqs, seen{r.Method, r.URL.EscapedPath(), r.URL.RawQuery, r.Header.Get(HeaderToken), string(b)})
		h := f.answers[r.Method+" "+r.URL.EscapedPath()]
		f.mu.Unlock()
		if h == nil {
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"error": "no such endpoint"}`)
			return
		}
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	c, err := NewClient(srv.URL, "secret")
	if err != nil {
		t.Fatal(err)
	}
	return f, c
}

func (f *fakeServer) json(key string, code int, index string, body string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answers[key] = func(w http.ResponseWriter, r *http.Request) {
		if index != "" {
			w.Header().Set(HeaderIndex, index)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_, _ = io.WriteString(w, body)
	}
}

func (f *fakeServer) last(t *testing.T) seen {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.reqs) == 0 {
		t.Fatal("no request received")
	}
	return f.reqs[len(f.reqs)-1]
}

func TestNewClientAddress(t *testing.T) {
	for in, want := range map[string]string{
		"":                         DefaultAddress,
		"10.0.0.1:4780":            "http://10.0.0.1:4780",
		"https://corral.example/":  "https://corral.example",
		"http://127.0.0.1:9/base/": "http://127.0.0.1:9/base",
	} {
		c, err := NewClient(in, "")
		if err != nil {
			t.Errorf("NewClient(%q): %v", in, err)
			continue
		}
		if c.Address() != want {
			t.Errorf("NewClient(%q).Address() = %q, want %q", in, c.Address(), want)
		}
	}
	for _, bad := range []string{"ftp://x:1", "http://", "http://[::1"} {
		if _, err := NewClient(bad, ""); !errors.Is(err, ErrBadAddress) {
			t.Errorf("NewClient(%q) err = %v, want ErrBadAddress", bad, err)
		}
	}
}

func TestClientRequests(t *testing.T) {
	ctx := context.Background()
	f, c := newFake(t)
	job := `{"id":"01J","queue":"default","plugin":"echo","state":"queued","priority":0,"max_attempts":25,"timeout":"30m0s","attempt":0,"created_at":"2025-01-01T00:00:00Z","updated_at":"2025-01-01T00:00:00Z"}`
	f.json("POST /v1/jobs", 200, "7", `{"id":"01J","index":7}`)
	f.json("GET /v1/jobs/01J", 200, "9", job)
	f.json("GET /v1/jobs/a%2Fb", 200, "9", job)
	f.json("DELETE /v1/jobs/01J", 200, "10", job)
	f.json("POST /v1/jobs/01J/retry", 200, "11", job)
	f.json("GET /v1/jobs", 200, "12", `{"jobs":[`+job+`],"index":12}`)
	f.json("GET /v1/queues", 200, "", `{"queues":[{"name":"default","paused":true,"concurrency":0,"max_attempts":25,"retention":"24h0m0s","counts":{"queued":2}}],"index":3}`)
	f.json("POST /v1/queues/mail/pause", 200, "", `{"name":"mail","paused":true}`)
	f.json("POST /v1/queues/mail/resume", 200, "", `{"name":"mail","paused":false}`)
	f.json("GET /v1/members", 200, "", `[{"name":"n1","addr":"127.0.0.1:4782","status":"alive","tags":{"role":"server"}}]`)
	f.json("GET /v1/operator/raft/configuration", 200, "", `{"index":5,"servers":[{"id":"a","node":"n1","address":"127.0.0.1:4781","leader":true,"voter":true}]}`)
	f.json("DELETE /v1/operator/raft/peer", 200, "", `{"removed":"b"}`)
	f.json("GET /v1/status/leader", 200, "", `{"id":"a","node":"n1","address":"127.0.0.1:4781","http":"127.0.0.1:4780"}`)
	f.json("GET /v1/agent/self", 200, "", `{"node":"n1","id":"a","state":"leader","leader":"a","term":2,"last_index":9,"applied_index":9,"stats":{"state":"Leader"}}`)
	f.json("PUT /v1/agent/leave", 200, "", `{"node":"n1","status":"leaving"}`)
	f.json("GET /v1/plugins", 200, "", `{"node":"n1","plugins":[{"name":"echo","builtin":true,"status":"ready","concurrency":4,"running":1}]}`)
	f.json("GET /v1/metrics", 200, "", "corral_jobs 3\n")

	check := func(step, method, path, query string) seen {
		t.Helper()
		got := f.last(t)
		if got.Method != method || got.Path != path || got.Query != query {
			t.Errorf("%s: sent %s %s?%s, want %s %s?%s", step, got.Method, got.Path, got.Query, method, path, query)
		}
		if got.Token != "secret" {
			t.Errorf("%s: token header = %q", step, got.Token)
		}
		return got
	}

	sub, err := c.Submit(ctx, JobRequest{Plugin: "echo", Payload: json.RawMessage(`{"echo":"hi"}`), Queue: "q", Delay: Duration(time.Minute)})
	if err != nil || sub.ID != "01J" || sub.Index != 7 {
		t.Fatalf("Submit = %+v, %v", sub, err)
	}
	body := check("submit", "POST", "/v1/jobs", "").Body
	if body != `{"queue":"q","plugin":"echo","payload":{"echo":"hi"},"delay":"1m0s"}` {
		t.Errorf("submit body = %s", body)
	}

	// No HTML escaping: & < > reach the server as written.
	if _, err := c.Submit(ctx, JobRequest{Plugin: "exec", Payload: json.RawMessage(`{"command":["sh","-c","a && b > c"]}`)}); err != nil {
		t.Fatal(err)
	}
	if body := check("submit", "POST", "/v1/jobs", "").Body; body != `{"plugin":"exec","payload":{"command":["sh","-c","a && b > c"]}}` {
		t.Errorf("submit body = %s", body)
	}

	if _, err := c.SubmitBatch(ctx, []JobRequest{{Plugin: "a"}, {Plugin: "b"}}); err != nil {
		t.Fatal(err)
	}
	var batch SubmitRequest
	if err := json.Unmarshal([]byte(check("batch", "POST", "/v1/jobs", "").Body), &batch); err != nil || len(batch.Jobs) != 2 || batch.Jobs[1].Plugin != "b" {
		t.Errorf("batch body = %+v, %v", batch, err)
	}

	j, err := c.Job(ctx, "01J")
	if err != nil || j.ID != "01J" || j.State != "queued" || time.Duration(j.Timeout) != 30*time.Minute {
		t.Fatalf("Job = %+v, %v", j, err)
	}
	check("job", "GET", "/v1/jobs/01J", "")
	if _, err := c.Job(ctx, "a/b"); err != nil {
		t.Errorf("Job with a slash in the ID: %v", err)
	}
	check("job escaped", "GET", "/v1/jobs/a%2Fb", "")

	j, idx, err := c.WaitJob(ctx, "01J", 8, 30*time.Second)
	if err != nil || idx != 9 || j.ID != "01J" {
		t.Fatalf("WaitJob = %+v, %d, %v", j, idx, err)
	}
	check("wait", "GET", "/v1/jobs/01J", "index=8&wait=30s")

	list, err := c.Jobs(ctx, "mail", "failed")
	if err != nil || len(list.Jobs) != 1 || list.Index != 12 {
		t.Fatalf("Jobs = %+v, %v", list, err)
	}
	check("list", "GET", "/v1/jobs", "queue=mail&state=failed")
	if _, err := c.Jobs(ctx, "", ""); err != nil {
		t.Fatal(err)
	}
	check("list all", "GET", "/v1/jobs", "")

	if _, err := c.Cancel(ctx, "01J"); err != nil {
		t.Fatal(err)
	}
	check("cancel", "DELETE", "/v1/jobs/01J", "")
	if _, err := c.Retry(ctx, "01J"); err != nil {
		t.Fatal(err)
	}
	check("retry", "POST", "/v1/jobs/01J/retry", "")

	qs, err := c.Queues(ctx)
	if err != nil || len(qs.Queues) != 1 || !qs.Queues[0].Paused || qs.Queues[0].Counts["queued"] != 2 {
		t.Fatalf("Queues = %+v, %v", qs, err)
	}
	if err := c.PauseQueue(ctx, "mail"); err != nil {
		t.Fatal(err)
	}
	check("pause", "POST", "/v1/queues/mail/pause", "")
	if err := c.ResumeQueue(ctx, "mail"); err != nil {
		t.Fatal(err)
	}
	check("resume", "POST", "/v1/queues/mail/resume", "")

	ms, err := c.Members(ctx)
	if err != nil || len(ms) != 1 || ms[0].Tags["role"] != "server" {
		t.Fatalf("Members = %+v, %v", ms, err)
	}
	rc, err := c.RaftConfiguration(ctx)
	if err != nil || rc.Index != 5 || !rc.Servers[0].Leader {
		t.Fatalf("RaftConfiguration = %+v, %v", rc, err)
	}
	if err := c.RemovePeer(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	check("remove-peer", "DELETE", "/v1/operator/raft/peer", "id=b")
	l, err := c.Leader(ctx)
	if err != nil || l.HTTP != "127.0.0.1:4780" {
		t.Fatalf("Leader = %+v, %v", l, err)
	}
	self, err := c.Self(ctx)
	if err != nil || self.State != "leader" || self.Term != 2 || self.Stats["state"] != "Leader" {
		t.Fatalf("Self = %+v, %v", self, err)
	}
	if err := c.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	check("leave", "PUT", "/v1/agent/leave", "")
	ps, err := c.Plugins(ctx)
	if err != nil || ps.Plugins[0].Name != "echo" || ps.Plugins[0].Running != 1 {
		t.Fatalf("Plugins = %+v, %v", ps, err)
	}
	m, err := c.Metrics(ctx)
	if err != nil || string(m) != "corral_jobs 3\n" {
		t.Fatalf("Metrics = %q, %v", m, err)
	}
}

func TestClientErrors(t *testing.T) {
	ctx := context.Background()
	f, c := newFake(t)
	f.json("GET /v1/jobs/nope", 404, "", `{"error": "job nope not found"}`)
	f.json("POST /v1/jobs/done/retry", 409, "", `{"error": "job done: job is not failed"}`)
	f.json("POST /v1/jobs", 503, "", `{"error": "no leader: the cluster has not elected one yet"}`)
	f.json("GET /v1/queues", 502, "", "Bad Gateway")

	_, err := c.Job(ctx, "nope")
	var se *StatusError
	if !errors.As(err, &se) || se.Code != 404 || se.Message != "job nope not found" || err.Error() != "job nope not found" {
		t.Errorf("404: err = %#v", err)
	}
	if !IsNotFound(err) || errors.Is(err, ErrConflict) {
		t.Errorf("404 not mapped to ErrNotFound: %v", err)
	}
	if _, err := c.Retry(ctx, "done"); !errors.Is(err, ErrConflict) || IsNotFound(err) {
		t.Errorf("409: err = %v", err)
	}
	if _, err := c.Submit(ctx, JobRequest{Plugin: "x"}); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "no leader") {
		t.Errorf("503: err = %v", err)
	}
	if _, err := c.Queues(ctx); !errors.As(err, &se) || se.Code != 502 || se.Message != "Bad Gateway" {
		t.Errorf("non-JSON error: err = %v", err)
	}
	if _, err := c.Metrics(ctx); !IsNotFound(err) {
		t.Errorf("unknown endpoint: err = %v", err)
	}
}

func TestClientUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c, err := NewClient(addr, "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Self(context.Background())
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("err = %v, want ErrUnreachable", err)
	}
	want := "cannot reach corral at http://" + addr + ": connection refused"
	if err.Error() != want {
		t.Errorf("err = %q, want %q", err, want)
	}

	// A caller's own cancellation is reported as such.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Self(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled call: err = %v", err)
	}
}

func TestClientTimeouts(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/agent/self": // hangs until the client gives up
			<-r.Context().Done()
		case "/v1/jobs/j/logs": // a slow stream
			w.WriteHeader(200)
			_, _ = io.WriteString(w, "line 1\n")
			w.(http.Flusher).Flush()
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
			_, _ = io.WriteString(w, "line 2\n")
		}
	}))
	t.Cleanup(srv.Close)
	c, err := NewClient(srv.URL, "")
	if err != nil {
		t.Fatal(err)
	}
	c.timeout = 100 * time.Millisecond

	start := time.Now()
	_, err = c.Self(context.Background())
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "timed out") {
		t.Errorf("hung call: err = %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("hung call took %s, want about the 100ms timeout", d)
	}

	// A stream outlives the per-call timeout and delivers as it goes.
	rc, err := c.Logs(context.Background(), "j", 0, true)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	br := bufio.NewReader(rc)
	if line, err := br.ReadString('\n'); err != nil || line != "line 1\n" {
		t.Fatalf("first line = %q, %v", line, err)
	}
	<-time.After(3 * c.timeout) // the per-call timeout passes; it must not cut the stream
	close(release)
	if rest, err := io.ReadAll(br); err != nil || string(rest) != "line 2\n" {
		t.Errorf("rest of stream = %q, %v", rest, err)
	}
}
