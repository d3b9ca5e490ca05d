package command

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/corral-dev/corral/daemon/api"
)

// fakeAPI is an in-memory stand-in for an agent's HTTP API.
type fakeAPI struct {
	t   *testing.T
	srv *httptest.Server

	mu sync.Mutex
	// timelines maps a job ID to the states a blocking query walks
	// through: ?index=N answers timelines[id][N] with X-Corral-Index N+1.
	// Past the end it answers the last entry, after blocking for the
	// whole ?wait= when that entry is not terminal.
	timelines map[string][]api.Job
	submits   []api.JobRequest
	requests  []string // "METHOD /path?query"
	tokens    []string
	paused    map[string]bool
	removed   []string
	left      bool
	// bulks records the bulk requests (path and body); bulkMatch is how
	// many jobs a bulk request matches.
	bulks     []string
	bulkMatch int
}

func newFakeAPI(t *testing.T) *fakeAPI {
	f := &fakeAPI{t: t, timelines: map[string][]api.Job{}, paused: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/jobs", f.submit)
	mux.HandleFunc("GET /v1/jobs", f.list)
	mux.HandleFunc("GET /v1/jobs/{id}", f.job)
	mux.HandleFunc("DELETE /v1/jobs/{id}", f.setState("cancelled"))
	mux.HandleFunc("POST /v1/jobs/{id}/retry", f.setState("queued"))
	mux.HandleFunc("POST /v1/jobs/retry", f.bulk)
	mux.HandleFunc("POST /v1/jobs/cancel", f.bulk)
	mux.HandleFunc("DELETE /v1/queues/{name}", func(w http.ResponseWriter, r *http.Request) {
		switch name := r.PathValue("name"); name {
		case "mail":
			writeFake(w, 409, api.Error{Error: "queue is not empty: mail still holds 7 jobs (7 failed); cancel the unfinished ones and wait until retention (1h0m0s) purges the finished ones"})
		case "defualt":
			writeFake(w, 200, map[string]string{"deleted": name})
		default:
			writeFake(w, 404, api.Error{Error: "queue " + name + " not found (see corral queue list)"})
		}
	})
	mux.HandleFunc("GET /v1/jobs/{id}/logs", f.logs)
	mux.HandleFunc("GET /v1/queues", func(w http.ResponseWriter, r *http.Request) {
		writeFake(w, 200, api.QueueList{Queues: []api.Queue{
			{Name: "default", Concurrency: 0, MaxAttempts: 25, Retention: api.Duration(24 * time.Hour), Counts: map[string]int{"queued": 3, "running": 1}},
			{Name: "mail", Paused: true, Concurrency: 2, MaxAttempts: 5, Retention: api.Duration(time.Hour), Counts: map[string]int{"failed": 7}},
		}, Index: 9})
	})
	mux.HandleFunc("POST /v1/queues/{name}/{op}", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.paused[r.PathValue("name")] = r.PathValue("op") == "pause"
		f.mu.Unlock()
		writeFake(w, 200, map[string]any{"name": r.PathValue("name")})
	})
	mux.HandleFunc("GET /v1/members", func(w http.ResponseWriter, r *http.Request) {
		writeFake(w, 200, []api.Member{
			{Name: "node-2", Addr: "10.0.0.2:4782", Status: "failed", Tags: map[string]string{"role": "server"}},
			{Name: "node-1", Addr: "10.0.0.1:4782", Status: "alive", Tags: map[string]string{"zone": "a", "role": "server"}},
		})
	})
	mux.HandleFunc("GET /v1/operator/raft/configuration", func(w http.ResponseWriter, r *http.Request) {
		writeFake(w, 200, api.RaftConfiguration{Index: 4, Servers: []api.RaftServer{
			{ID: "id-1", Node: "node-1", Address: "10.0.0.1:4781", Leader: true, Voter: true},
			{ID: "id-2", Node: "node-2", Address: "10.0.0.2:4781", Voter: false},
		}})
	})
	mux.HandleFunc("DELETE /v1/operator/raft/peer", func(w http.ResponseWriter, r *http.Request) {
		id := r.URL.Query().Get("id")
		if id != "id-2" {
			writeFake(w, 404, api.Error{Error: "no raft peer with id " + id})
			return
		}
		f.mu.Lock()
		f.removed = append(f.removed, id)
		f.mu.Unlock()
		writeFake(w, 200, map[string]string{"removed": id})
	})
	mux.HandleFunc("GET /v1/agent/self", func(w http.ResponseWriter, r *http.Request) {
		writeFake(w, 200, api.Self{Node: "node-1", ID: "id-1", State: "leader", Leader: "id-1", Term: 3,
			LastIndex: 42, AppliedIndex: 41, Version: "0.1.0-dev",
			Stats: map[string]string{"num_peers": "2", "commit_index": "42", "applied_index": "41"}})
	})
	mux.HandleFunc("PUT /v1/agent/leave", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.left = true
		f.mu.Unlock()
		writeFake(w, 200, map[string]string{"status": "leaving"})
	})
	mux.HandleFunc("GET /v1/plugins", func(w http.ResponseWriter, r *http.Request) {
		writeFake(w, 200, api.PluginList{Node: "node-1", Plugins: []api.Plugin{
			{Name: "echo", Version: "1.0.0", Description: "echoes", Builtin: true, Status: "ready", Concurrency: 4, Running: 1},
			{Name: "resize", Path: "/etc/corral/plugins/resize", Status: "failed", Error: "exec format error", Concurrency: 2},
		}})
	})
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.requests = append(f.requests, r.Method+" "+r.URL.Path+"?"+r.URL.RawQuery)
		f.tokens = append(f.tokens, r.Header.Get(api.HeaderToken))
		f.mu.Unlock()
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func writeFake(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// addJob registers a job's timeline of states.
func (f *fakeAPI) addJob(id string, states ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	created := time.Now().Add(-time.Minute)
	var tl []api.Job
	for i, s := range states {
		j := api.Job{ID: id, Queue: "default", Plugin: "echo", State: s, MaxAttempts: 25,
			Timeout: api.Duration(30 * time.Minute), CreatedAt: created, UpdatedAt: created.Add(time.Duration(i) * time.Second),
			Payload: json.RawMessage(`{"echo":"hi"}`)}
		switch s {
		case "running":
			j.Attempt, j.Node = 1, "node-1"
			j.Progress = &api.Progress{Percent: 50, Message: "halfway"}
		case "succeeded":
			j.Attempt, j.Node, j.Result = 1, "node-1", json.RawMessage(`"hi"`)
		case "failed":
			j.Attempt, j.Node, j.Error = 3, "node-1", "boom: exit status 1"
		case "queued":
			j.Waiting = "no node has plugin echo"
		case "retrying": // scheduled again after a failed attempt
			j.State, j.Attempt, j.Node = "scheduled", 1, "node-1"
			j.RunAt = created.Add(2 * time.Minute)
		}
		if j.Attempt > 0 {
			for a := 1; a <= j.Attempt; a++ {
				at := api.Attempt{Attempt: a, Node: "node-1", Started: created.Add(time.Duration(a) * time.Second)}
				if s != "running" || a < j.Attempt {
					at.Finished = at.Started.Add(1500 * time.Millisecond)
					at.Outcome = "failed"
					at.Error = "boom: exit status 1"
					if j.State == "succeeded" {
						at.Outcome, at.Error = "succeeded", ""
					}
				}
				j.Attempts = append(j.Attempts, at)
			}
		}
		tl = append(tl, j)
	}
	f.timelines[id] = tl
}

func (f *fakeAPI) submit(w http.ResponseWriter, r *http.Request) {
	var req api.JobRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeFake(w, 400, api.Error{Error: "malformed JSON body: " + err.Error()})
		return
	}
	if req.Plugin == "nope" {
		writeFake(w, 400, api.Error{Error: `no node has plugin "nope"`})
		return
	}
	f.mu.Lock()
	f.submits = append(f.submits, req)
	f.mu.Unlock()
	id := "01JOB"
	if req.Plugin == "nobody" {
		writeFake(w, 200, api.SubmitResponse{ID: id, Index: 5, Warnings: []string{`no node has plugin "nobody": the job waits until a node with it joins`}})
		return
	}
	if req.Plugin == "fail" {
		id = "01FAIL"
	}
	writeFake(w, 200, api.SubmitResponse{ID: id, Existing: req.UniqueKey == "dup", Index: 5})
}

func (f *fakeAPI) job(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	f.mu.Lock()
	tl, ok := f.timelines[id]
	f.mu.Unlock()
	if !ok {
		writeFake(w, 404, api.Error{Error: "job " + id + " not found"})
		return
	}
	n, _ := strconv.Atoi(r.URL.Query().Get("index"))
	if n >= len(tl) {
		n = len(tl) - 1
		if !terminal(tl[n].State) {
			wait, _ := time.ParseDuration(r.URL.Query().Get("wait"))
			select { // a blocking query with nothing new
			case <-time.After(wait):
			case <-r.Context().Done():
				return
			}
		}
	}
	w.Header().Set(api.HeaderIndex, strconv.Itoa(n+1))
	writeFake(w, 200, tl[n])
}

// list answers GET /v1/jobs newest (highest ID) first, with state and
// plugin filters, limit and a cursor (the last ID of the page).
func (f *fakeAPI) list(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	q := r.URL.Query()
	out := api.JobList{Index: 7}
	for _, tl := range f.timelines {
		j := tl[len(tl)-1]
		if (q.Get("state") != "" && q.Get("state") != j.State) || (q.Get("plugin") != "" && q.Get("plugin") != j.Plugin) {
			continue
		}
		out.Jobs = append(out.Jobs, j)
	}
	sort.Slice(out.Jobs, func(a, b int) bool { return out.Jobs[a].ID > out.Jobs[b].ID })
	total := len(out.Jobs)
	out.Total = &total
	if c := q.Get("cursor"); c != "" {
		i := sort.Search(len(out.Jobs), func(i int) bool { return out.Jobs[i].ID < c })
		out.Jobs = out.Jobs[i:]
	}
	if n, _ := strconv.Atoi(q.Get("limit")); n > 0 && len(out.Jobs) > n {
		out.Jobs = out.Jobs[:n]
		out.NextCursor = out.Jobs[n-1].ID
	}
	writeFake(w, 200, out)
}

// bulk answers POST /v1/jobs/retry and /v1/jobs/cancel: bulkMatch jobs
// match; a real run takes two entries.
func (f *fakeAPI) bulk(w http.ResponseWriter, r *http.Request) {
	var req api.BulkRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeFake(w, 400, api.Error{Error: err.Error()})
		return
	}
	if req.State == "queued" && strings.HasSuffix(r.URL.Path, "/retry") {
		writeFake(w, 400, api.Error{Error: "invalid job filter: cannot retry queued jobs (state must be failed or cancelled)"})
		return
	}
	b, _ := json.Marshal(req)
	f.mu.Lock()
	f.bulks = append(f.bulks, r.URL.Path+" "+string(b))
	n := f.bulkMatch
	f.mu.Unlock()
	if req.DryRun {
		writeFake(w, 200, api.BulkResult{Count: n, DryRun: true, Index: 7})
		return
	}
	writeFake(w, 200, api.BulkResult{Count: n, Entries: 2, Index: 9})
}

func (f *fakeAPI) setState(state string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		f.mu.Lock()
		tl, ok := f.timelines[id]
		f.mu.Unlock()
		if !ok {
			writeFake(w, 404, api.Error{Error: "job " + id + " not found"})
			return
		}
		j := tl[len(tl)-1]
		if state == "queued" && j.State != "failed" {
			writeFake(w, 409, api.Error{Error: fmt.Sprintf("job %s: job is %s, only failed jobs can be retried", id, j.State)})
			return
		}
		if state == "cancelled" && terminal(j.State) {
			writeFake(w, 409, api.Error{Error: fmt.Sprintf("job already finished: job %s is %s", id, j.State)})
			return
		}
		if state == "cancelled" && j.State == "running" {
			j.CancelRequested = true
		} else {
			j.State = state
		}
		writeFake(w, 200, j)
	}
}

func (f *fakeAPI) logs(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if id != "01JOB" {
		writeFake(w, 404, api.Error{Error: "job " + id + " not found"})
		return
	}
	w.WriteHeader(200)
	fmt.Fprintf(w, "attempt=%s follow=%s\nline two\n", r.URL.Query().Get("attempt"), r.URL.Query().Get("follow"))
}

func (f *fakeAPI) lastRequest() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests[len(f.requests)-1]
}

// cliResult is one in-process run of the CLI.
type cliResult struct {
	stdout, stderr string
	code           int
}

// runCLI runs the CLI in-process against env (CORRAL_ADDR etc.) with stdin.
func runCLI(t *testing.T, env map[string]string, stdin string, interactive bool, args ...string) cliResult {
	t.Helper()
	return runCLIMeta(t, env, Meta{Stdin: strings.NewReader(stdin), Interactive: interactive}, args...)
}

// runCLIMeta runs the CLI in-process with m's streams and terminal flags
// (stdout and stderr are captured).
func runCLIMeta(t *testing.T, env map[string]string, m Meta, args ...string) cliResult {
	t.Helper()
	var stdout, stderr bytes.Buffer
	m.Stdout, m.Stderr = &stdout, &stderr
	m.Getenv = func(k string) string { return env[k] }
	code := run(args, m)
	return cliResult{stdout.String(), stderr.String(), code}
}

// cli runs the CLI against the fake.
func (f *fakeAPI) cli(args ...string) cliResult {
	f.t.Helper()
	return runCLI(f.t, map[string]string{EnvAddress: f.srv.URL}, "", false, args...)
}
