package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/corral-dev/corral/daemon/acl"
	"github.com/corral-dev/corral/daemon/api"
	"github.com/corral-dev/corral/queue"
)

// fakeCluster is the cluster view of the tests: a fixed set of nodes and
// members. Methods the tests do not use panic (nil embedded interface).
type fakeCluster struct {
	Cluster
	nodes   []Node
	members []api.Member
}

func (f *fakeCluster) Nodes() []Node                                  { return append([]Node(nil), f.nodes...) }
func (f *fakeCluster) Members() []api.Member                          { return f.members }
func (f *fakeCluster) Replayed() (bool, uint64, uint64)               { return true, 0, 0 }
func (f *fakeCluster) Staleness() (knownLeader bool, _ time.Duration) { return true, 0 }

// storeWriter applies writes to a local store at the wall clock, like a
// one-node leader.
type storeWriter struct {
	Writer
	s     *queue.Store
	index uint64
}

func (w *storeWriter) Write(_ context.Context, cmd queue.Command) (queue.Result, uint64, error) {
	w.index++
	return w.s.ApplyEntry(w.index, queue.Entry{Now: time.Now().UTC(), Cmds: []queue.Command{cmd}})[0], w.index, nil
}

type planFixture struct {
	t *testing.T
	s *queue.Store
	w *storeWriter
	h http.Handler
}

func newPlanFixture(t *testing.T, acls bool) *planFixture {
	s := queue.New()
	w := &storeWriter{s: s}
	cl := &fakeCluster{
		nodes: []Node{
			{Name: "c-zone-b", Plugins: []string{"echo"}, Tags: map[string]string{"zone": "b"}},
			{Name: "a-zone-a", Plugins: []string{"echo", "exec"}, Tags: map[string]string{"zone": "a", "gpu": "yes"}},
			{Name: "b-no-echo", Plugins: []string{"http", "exec"}, Tags: map[string]string{"zone": "a"}},
			{Name: "d-untagged", Plugins: []string{"echo"}},
		},
		members: []api.Member{{Name: "a-zone-a", Status: "alive"}, {Name: "e-gone", Status: "failed"}},
	}
	cfg := Config{MaxRequestBytes: 1 << 20, MaxPayloadBytes: 1 << 10}
	if acls {
		cfg.ACLs = s
	}
	f := &planFixture{t: t, s: s, w: w, h: New(cfg, s, w, cl, nil, nil).Handler()}
	return f
}

func (f *planFixture) apply(cmds ...queue.Command) {
	f.t.Helper()
	for _, c := range cmds {
		if res, _, _ := f.w.Write(context.Background(), c); res.Err != nil {
			f.t.Fatalf("%T: %v", c, res.Err)
		}
	}
}

// do sends a request and decodes a 200 answer into out; it returns the
// status and the error text of any other answer.
func (f *planFixture) do(method, path, token string, body any, out any) (int, string) {
	f.t.Helper()
	b, _ := json.Marshal(body)
	req := httptest.NewRequest(method, path, bytes.NewReader(b))
	if token != "" {
		req.Header.Set("X-Corral-Token", token)
	}
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		var e api.Error
		_ = json.Unmarshal(rec.Body.Bytes(), &e)
		return rec.Code, e.Error
	}
	if err := json.Unmarshal(rec.Body.Bytes(), out); err != nil {
		f.t.Fatalf("decode %s: %v", rec.Body.String(), err)
	}
	return rec.Code, ""
}

func (f *planFixture) plan(req api.JobRequest) api.Plan {
	f.t.Helper()
	var p api.Plan
	if code, msg := f.do(http.MethodPost, "/v1/jobs/plan", "", req, &p); code != http.StatusOK {
		f.t.Fatalf("plan: %d %s", code, msg)
	}
	return p
}

func nodeReasons(p api.Plan) map[string]string {
	out := map[string]string{}
	for _, n := range p.Nodes {
		if n.Eligible {
			out[n.Node] = "eligible"
		} else {
			out[n.Node] = n.Reason
		}
	}
	return out
}

// TestPlanNamesEachNodesReason: every node is listed in name order with
// the reason it cannot run the job (missing plugin with what it has, each
// constraint not met, naming the tag), and failed members too.
func TestPlanNamesEachNodesReason(t *testing.T) {
	f := newPlanFixture(t, false)
	p := f.plan(api.JobRequest{Plugin: "echo", Constraints: map[string]string{"zone": "a", "gpu": "yes"}})
	want := map[string]string{
		"a-zone-a":   "eligible",
		"b-no-echo":  `plugin "echo" is not installed (it has exec, http)`,
		"c-zone-b":   `constraint gpu=yes: node has no tag "gpu"; constraint zone=a: node has zone=b`,
		"d-untagged": `constraint gpu=yes: node has no tag "gpu"; constraint zone=a: node has no tag "zone"`,
		"e-gone":     "node is failed",
	}
	got := nodeReasons(p)
	for node, w := range want {
		if got[node] != w {
			t.Errorf("%s: %q, want %q", node, got[node], w)
		}
	}
	if len(got) != len(want) || p.Nodes[0].Node != "a-zone-a" || p.Nodes[3].Node != "d-untagged" {
		t.Errorf("nodes %+v: want the 4 alive ones in name order, then the failed one", p.Nodes)
	}
	if !p.RunnableNow || p.Queue != "default" || len(p.Warnings) != 0 || len(p.Reasons) != 0 {
		t.Errorf("plan %+v: want runnable in the default queue with no warnings", p)
	}

	p = f.plan(api.JobRequest{Plugin: "echo", Constraints: map[string]string{"zone": "mars"}})
	if p.RunnableNow || len(p.Warnings) != 1 || p.Warnings[0] != `no node with plugin "echo" matches the constraints zone=mars` {
		t.Errorf("unmatched constraints: runnable %v, warnings %q", p.RunnableNow, p.Warnings)
	}
	p = f.plan(api.JobRequest{Plugin: "nobody"})
	if p.RunnableNow || len(p.Warnings) != 1 || !strings.HasPrefix(p.Warnings[0], `no node has plugin "nobody"`) {
		t.Errorf("missing plugin: runnable %v, warnings %q", p.RunnableNow, p.Warnings)
	}
	if f.s.Index() != 0 {
		t.Fatalf("planning wrote to the store (index %d)", f.s.Index())
	}
}

// TestPlanNamesWhatTheQueueHoldsBack: pause, concurrency cap, rate limit,
// the delay, and the jobs ahead (same or higher priority only).
func TestPlanNamesWhatTheQueueHoldsBack(t *testing.T) {
	f := newPlanFixture(t, false)
	f.apply(
		&queue.Submit{IDs: []string{"j1", "j2", "j3", "j4"}, Specs: []queue.Spec{
			{Queue: "q", Plugin: "echo", Priority: 5}, {Queue: "q", Plugin: "exec", Priority: 1},
			{Queue: "q", Plugin: "echo", Priority: 1}, {Queue: "q", Plugin: "echo", Priority: 0},
		}},
		&queue.SetQueue{Name: "q", Fields: queue.FieldConcurrency, Config: queue.QueueConfig{Concurrency: 1}},
		&queue.Claim{Node: "a-zone-a", Slots: map[string]int{"echo": 1}},
		&queue.SetQueue{Name: "q", Fields: queue.FieldPaused, Config: queue.QueueConfig{Paused: true}},
		&queue.SetQueueRate{Name: "q", Rate: queue.Rate{Count: 1, Per: time.Hour, Burst: 1}},
		&queue.Claim{Node: "a-zone-a", Slots: map[string]int{"echo": 1}}, // paused: nothing
	)
	p := f.plan(api.JobRequest{Queue: "q", Plugin: "echo", Priority: 1, Delay: api.Duration(time.Hour)})
	if p.Ahead != 2 || p.AheadSamePlugin != 1 {
		t.Errorf("ahead %d (%d of echo), want 2 (1)", p.Ahead, p.AheadSamePlugin)
	}
	wantReasons := []string{
		"the job is delayed until ",
		`queue "q" is paused (corral queue resume q)`,
		`queue "q" is at its concurrency limit of 1 (1 running)`,
		`queue "q" is rate limited (1/h, burst 1): the 2 jobs ahead use its tokens; a token for this one in about 2h0m0s`,
	}
	if len(p.Reasons) != len(wantReasons) || p.RunnableNow || p.RunAt.IsZero() {
		t.Fatalf("reasons %q (runnable %v, run_at %v), want %q", p.Reasons, p.RunnableNow, p.RunAt, wantReasons)
	}
	for i, w := range wantReasons {
		if !strings.HasPrefix(p.Reasons[i], w) {
			t.Errorf("reason %d: %q, want %q", i, p.Reasons[i], w)
		}
	}

	// With the bucket empty the reason is the wait for the next token, and
	// a queued job's `waiting` says the same.
	f.apply(&queue.SetQueue{Name: "q", Fields: queue.FieldPaused | queue.FieldConcurrency, Config: queue.QueueConfig{}},
		&queue.Claim{Node: "a-zone-a", Slots: map[string]int{"echo": 4}})
	p = f.plan(api.JobRequest{Queue: "q", Plugin: "echo"})
	if len(p.Reasons) != 1 || !strings.HasPrefix(p.Reasons[0], `queue "q" is rate limited (1/h, burst 1): next token in `) {
		t.Errorf("reasons %q, want the rate limit with the next token", p.Reasons)
	}
	var j api.Job
	if code, msg := f.do(http.MethodGet, "/v1/jobs/j4", "", nil, &j); code != http.StatusOK {
		t.Fatalf("get job: %d %s", code, msg)
	}
	if j.State != "queued" || !strings.HasPrefix(j.Waiting, `queue "q" is rate limited (1/h, burst 1): next token in `) {
		t.Errorf("job %s waiting %q", j.State, j.Waiting)
	}
	var ql api.QueueList
	f.do(http.MethodGet, "/v1/queues", "", nil, &ql)
	if q := ql.Queues[len(ql.Queues)-1]; q.Name != "q" || q.Rate != "1/h" || q.Burst != 1 || q.Tokens == nil || *q.Tokens >= 1 || q.NextToken.IsZero() {
		t.Errorf("queue list entry %+v", q)
	}
}

// TestPlanAndRateRejectBadInput: one-line 400s that change nothing.
func TestPlanAndRateRejectBadInput(t *testing.T) {
	f := newPlanFixture(t, false)
	f.apply(&queue.Submit{IDs: []string{"j1"}, Specs: []queue.Spec{{Queue: "q", Plugin: "echo"}}})
	before := f.s.Index()
	cases := []struct {
		method, path string
		body         any
		code         int
		want         string
	}{
		{"POST", "/v1/jobs/plan", api.SubmitRequest{Jobs: []api.JobRequest{{Plugin: "echo"}}}, 400, "job plan takes one job"},
		{"POST", "/v1/jobs/plan", api.JobRequest{}, 400, "job has no plugin"},
		{"POST", "/v1/jobs/plan", api.JobRequest{Plugin: "echo", Queue: "bad queue"}, 400, `"bad queue" must be`},
		{"POST", "/v1/jobs/plan", api.JobRequest{Plugin: "echo", Payload: json.RawMessage(`"` + strings.Repeat("x", 2000) + `"`)}, 413, "limits.max_payload_bytes"},
		{"PUT", "/v1/queues/q/rate", api.QueueRate{Rate: "100/d"}, 400, `rate "100/d": want N/s, N/m or N/h`},
		{"PUT", "/v1/queues/q/rate", api.QueueRate{Rate: "5/s", Burst: -2}, 400, "burst -2 must be 1-1000000"},
		{"PUT", "/v1/queues/q/rate", api.QueueRate{Burst: 3}, 400, "burst 3 without a rate"},
		{"PUT", "/v1/queues/nope/rate", api.QueueRate{Rate: "5/s"}, 404, "queue nope not found"},
	}
	for _, tc := range cases {
		code, msg := f.do(tc.method, tc.path, "", tc.body, &struct{}{})
		if code != tc.code || !strings.Contains(msg, tc.want) || strings.Contains(msg, "\n") {
			t.Errorf("%s %s %+v: %d %q, want %d with %q", tc.method, tc.path, tc.body, code, msg, tc.code, tc.want)
		}
	}
	if f.s.Index() != before {
		t.Fatal("a rejected request wrote to the store")
	}
	var q api.Queue
	if code, msg := f.do("PUT", "/v1/queues/q/rate", "", api.QueueRate{Rate: "100/s", Burst: 20}, &q); code != 200 || q.Rate != "100/s" || q.Burst != 20 {
		t.Fatalf("set rate: %d %s %+v", code, msg, q)
	}
	if r := f.s.Queues()[0].Rate; r == nil || r.Rate != (queue.Rate{Count: 100, Per: time.Second, Burst: 20}) {
		t.Fatalf("stored rate %+v", r)
	}
}

// TestPlanNeedsSubmitPermission: planning a job needs queue:write on its
// queue, as submitting it would; setting a rate needs operator:write.
func TestPlanNeedsSubmitPermission(t *testing.T) {
	f := newPlanFixture(t, true)
	f.apply(
		&queue.ACLSetPolicy{Policy: queue.ACLPolicy{Name: "mail", Rules: `queue "mail" { policy = "write" }` + "\n" + `queue "" { policy = "read" }`}},
		&queue.ACLSetToken{Token: queue.ACLToken{AccessorID: "acc", SecretHash: acl.HashSecret("secret"), Policies: []string{"mail"}}},
		&queue.Submit{IDs: []string{"j1"}, Specs: []queue.Spec{{Queue: "mail", Plugin: "echo"}}},
	)
	var p api.Plan
	if code, msg := f.do("POST", "/v1/jobs/plan", "", api.JobRequest{Queue: "mail", Plugin: "echo"}, &p); code != 401 {
		t.Errorf("no token: %d %s", code, msg)
	}
	if code, msg := f.do("POST", "/v1/jobs/plan", "secret", api.JobRequest{Queue: "mail", Plugin: "echo"}, &p); code != 200 {
		t.Errorf("write on mail: %d %s", code, msg)
	}
	if code, msg := f.do("POST", "/v1/jobs/plan", "secret", api.JobRequest{Queue: "other", Plugin: "echo"}, &p); code != 403 || !strings.Contains(msg, "queue:write") {
		t.Errorf("read only on other: %d %s", code, msg)
	}
	if code, msg := f.do("PUT", "/v1/queues/mail/rate", "secret", api.QueueRate{Rate: "1/s"}, &struct{}{}); code != 403 || !strings.Contains(msg, "operator:write") {
		t.Errorf("set rate without operator:write: %d %s", code, msg)
	}
}
