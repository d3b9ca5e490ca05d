package daemon_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/corral-dev/corral/daemon/api"
	"github.com/corral-dev/corral/daemon/testcluster"
)

// TestDependenciesThroughAFollower: a batch with local names submitted
// through a follower (forwarded as one SubmitDAG) runs its healthy branch
// and cancels the descendants of a failing job with the reason, the same
// on every node; the follower answers a bad batch with 400 and a retry of
// a child whose parent is cancelled with 409.
func TestDependenciesThroughAFollower(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Nodes: 3, Builtins: true})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	follower := c.Follower()
	fail := json.RawMessage(`{"fail_attempts": 1}`)
	sub, err := follower.Client.SubmitBatch(ctx, []api.JobRequest{
		{Name: "bad", Plugin: "echo", Payload: fail, MaxAttempts: 1},
		{Name: "mid", Plugin: "echo", DependsOn: []string{"bad"}},
		{Name: "leaf", Plugin: "echo", DependsOn: []string{"mid"}},
		{Name: "ok", Plugin: "echo", Payload: json.RawMessage(`{"echo": "fine"}`)},
		{Name: "after", Plugin: "echo", DependsOn: []string{"ok"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	id := map[string]string{}
	for _, j := range sub.Jobs {
		id[j.Name] = j.ID
	}
	if len(id) != 5 {
		t.Fatalf("submit answer %+v", sub)
	}
	want := map[string]struct{ state, err string }{
		"bad":   {"failed", ""},
		"mid":   {"cancelled", "parent " + id["bad"] + " failed"},
		"leaf":  {"cancelled", "parent " + id["mid"] + " cancelled: parent " + id["bad"] + " failed"},
		"ok":    {"succeeded", ""},
		"after": {"succeeded", ""},
	}
	for _, n := range c.Nodes {
		c.Eventually(30*time.Second, n.Name+" sees every job end as it should", func() bool {
			for name, w := range want {
				j, err := n.Client.Job(ctx, id[name])
				if err != nil || j.State != w.state || (w.err != "" && j.Error != w.err) {
					return false
				}
			}
			return true
		})
	}
	if j, _ := follower.Client.Job(ctx, id["mid"]); len(j.Parents) != 1 || j.Parents[0] != id["bad"] || len(j.Children) != 1 || j.Children[0] != id["leaf"] {
		t.Fatalf("mid: parents %v, children %v", j.Parents, j.Children)
	}

	var se *api.StatusError
	_, err = follower.Client.SubmitBatch(ctx, []api.JobRequest{{Plugin: "echo", DependsOn: []string{id["ok"], "no-such-job"}}})
	if !errors.As(err, &se) || se.Code != http.StatusBadRequest || !strings.Contains(se.Message, "parent no-such-job not found") {
		t.Fatalf("unknown parent through a follower: %v", err)
	}
	_, err = follower.Client.Retry(ctx, id["leaf"])
	if !errors.As(err, &se) || se.Code != http.StatusConflict || !strings.Contains(se.Message, "retry the parent first") {
		t.Fatalf("retry of a child with a cancelled parent: %v", err)
	}
}
