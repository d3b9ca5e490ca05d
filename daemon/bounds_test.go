package daemon_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/corral-dev/corral/daemon/api"
	"github.com/corral-dev/corral/daemon/testcluster"
	"github.com/corral-dev/corral/queue"
)

// TestServerSideBounds replays issue 11's oversized and malformed submits
// (a 5 MB unique_key, 10,000 constraints, a path as a plugin name, a
// 10,000-character plugin name, a bad queue name) and the pause of an
// invalid and of an unknown queue. Each is refused before raft with the
// status and a message naming the field and the limit, and the replicated
// state does not change.
func TestServerSideBounds(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Nodes: 1})
	n := c.Nodes[0]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	checkRefused(t, ctx, n)
}

// checkRefused runs the bounds attacks against n, whose client must be
// allowed to submit and to pause queues.
func checkRefused(t *testing.T, ctx context.Context, n *testcluster.Node) {
	t.Helper()
	manyConstraints := make(map[string]string, 10000)
	for i := range 10000 {
		manyConstraints[fmt.Sprintf("k%d", i)] = "v"
	}
	cases := []struct {
		name string
		req  api.JobRequest
		code int
		want []string
	}{
		{"5 MB unique_key", api.JobRequest{Plugin: "echo", UniqueKey: strings.Repeat("u", 5<<20)}, http.StatusRequestEntityTooLarge, []string{"unique_key", "256"}},
		{"unique_key one over", api.JobRequest{Plugin: "echo", UniqueKey: strings.Repeat("u", queue.MaxUniqueKey+1)}, http.StatusRequestEntityTooLarge, []string{"unique_key", "256"}},
		{"10,000 constraints", api.JobRequest{Plugin: "echo", Constraints: manyConstraints}, http.StatusRequestEntityTooLarge, []string{"constraints", "64"}},
		{"long constraint key", api.JobRequest{Plugin: "echo", Constraints: map[string]string{strings.Repeat("k", 129): "v"}}, http.StatusRequestEntityTooLarge, []string{"constraints", "128"}},
		{"long constraint value", api.JobRequest{Plugin: "echo", Constraints: map[string]string{"k": strings.Repeat("v", 257)}}, http.StatusRequestEntityTooLarge, []string{"constraints", "256"}},
		{"path as plugin", api.JobRequest{Plugin: "../../bin/sh"}, http.StatusBadRequest, []string{"plugin", "[a-z0-9][a-z0-9_-]{0,63}"}},
		{"10,000-character plugin", api.JobRequest{Plugin: strings.Repeat("a", 10000)}, http.StatusBadRequest, []string{"plugin", "64"}},
		{"upper-case plugin", api.JobRequest{Plugin: "Echo"}, http.StatusBadRequest, []string{"plugin"}},
		{"bad queue name", api.JobRequest{Plugin: "echo", Queue: "a/b"}, http.StatusBadRequest, []string{"queue", "128"}},
	}
	before := n.Agent.Store().Index()
	for _, tc := range cases {
		_, err := n.Client.Submit(ctx, tc.req)
		assertStatus(t, tc.name, err, tc.code, tc.want...)
	}
	// At the limits, a submit is accepted.
	atLimit := make(map[string]string, queue.MaxConstraints)
	for i := range queue.MaxConstraints {
		atLimit[fmt.Sprintf("%0128d", i)] = strings.Repeat("v", queue.MaxConstraintValue)
	}
	if _, err := n.Client.Submit(ctx, api.JobRequest{Plugin: "no-node-has-" + strings.Repeat("x", 52), Queue: "bounds",
		UniqueKey: strings.Repeat("u", queue.MaxUniqueKey), Constraints: atLimit}); err != nil {
		t.Fatalf("submit at every limit: %v", err)
	}
	after := n.Agent.Store().Index()
	if got := len(n.Agent.Store().List(queue.Filter{})); got != 1 {
		t.Fatalf("%d jobs in the store, want only the one at the limits", got)
	}

	// Pause of an invalid queue name: 400 before raft; of an unknown
	// queue: 404, and no queue is created.
	assertStatus(t, "pause invalid name", n.Client.PauseQueue(ctx, strings.Repeat("q", 129)), http.StatusBadRequest, "queue name", "128")
	assertStatus(t, "pause unknown queue", n.Client.PauseQueue(ctx, "nosuchqueue"), http.StatusNotFound, "nosuchqueue")
	assertStatus(t, "resume unknown queue", n.Client.ResumeQueue(ctx, "nosuchqueue"), http.StatusNotFound, "nosuchqueue")
	for _, q := range n.Agent.Store().Queues() {
		if q.Name == "nosuchqueue" {
			t.Fatalf("pausing an unknown queue created it")
		}
	}
	if got := n.Agent.Store().Index(); got != after {
		t.Fatalf("refused pauses moved the store from index %d to %d", after, got)
	}
	if after <= before {
		t.Fatalf("the accepted submit did not move the index (%d -> %d)", before, after)
	}
	// A known queue pauses.
	if err := n.Client.PauseQueue(ctx, "bounds"); err != nil {
		t.Fatalf("pause a known queue: %v", err)
	}
}

// assertStatus fails unless err is an HTTP answer with code whose message
// contains every string in want.
func assertStatus(t *testing.T, what string, err error, code int, want ...string) {
	t.Helper()
	var se *api.StatusError
	if !errors.As(err, &se) {
		t.Fatalf("%s: error %v (%T), want HTTP %d", what, err, err, code)
	}
	if se.Code != code {
		t.Fatalf("%s: HTTP %d (%s), want %d", what, se.Code, se.Message, code)
	}
	for _, w := range want {
		if !strings.Contains(se.Message, w) {
			t.Fatalf("%s: message %q does not name %q", what, se.Message, w)
		}
	}
	if strings.Contains(se.Message, "\n") || len(se.Message) > 400 {
		t.Fatalf("%s: message is not one short line: %q", what, se.Message)
	}
}
