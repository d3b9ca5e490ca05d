package daemon_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/corral-dev/corral/daemon/api"
	"github.com/corral-dev/corral/daemon/testcluster"
)

// getJob reads a job through node n with the given query (e.g.
// "consistent=true") and returns the status, the job and its index.
func getJob(t *testing.T, n *testcluster.Node, id, query string) (int, api.Job, uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+n.Agent.HTTPAddr()+"/v1/jobs/"+id+"?"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET job %s?%s on %s: %v", id, query, n.Name, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var j api.Job
	if resp.StatusCode != http.StatusOK {
		t.Logf("GET job %s?%s on %s: %d %s", id, query, n.Name, resp.StatusCode, body)
	}
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, &j); err != nil {
			t.Fatalf("decode job: %v: %s", err, body)
		}
	}
	idx, _ := strconv.ParseUint(resp.Header.Get("X-Corral-Index"), 10, 64)
	return resp.StatusCode, j, idx
}

// TestConsistentAndStaleReads checks the three read modes of GET
// /v1/jobs/{id}: a consistent read through any node is answered by the
// leader and sees a write acknowledged before it; a node that lost its
// quorum refuses consistent reads but still serves stale and default
// ones; stale and consistent together are rejected.
func TestConsistentAndStaleReads(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Nodes: 3})
	leader := c.Leader()
	var followers []*testcluster.Node
	for _, n := range c.Nodes {
		if n != leader {
			followers = append(followers, n)
		}
	}
	id := submitJob(t, followers[0].Client, api.JobRequest{Plugin: "nobody-has-this", Payload: json.RawMessage(`{}`)})

	for _, n := range c.Nodes {
		code, j, idx := getJob(t, n, id, "consistent=true")
		if code != http.StatusOK || j.ID != id || j.State != "queued" || idx == 0 {
			t.Fatalf("consistent read on %s: status %d, job %+v, index %d", n.Name, code, j, idx)
		}
	}
	if code, _, _ := getJob(t, followers[1], id, "stale=true&consistent=true"); code != http.StatusBadRequest {
		t.Fatalf("GET ?stale=true&consistent=true: status %d, want 400", code)
	}
	// A consistent read through a follower does not wait for the
	// follower's own replica: wait until it has the job too.
	c.Eventually(10*time.Second, "the job on "+followers[1].Name, func() bool {
		code, _, _ := getJob(t, followers[1], id, "stale=true")
		return code == http.StatusOK
	})

	// Quorum lost: the remaining node may lead for a moment but can never
	// verify it, so consistent reads fail while local reads still answer.
	c.StopNode(leader)
	c.StopNode(followers[0])
	last := followers[1]
	if code, _, _ := getJob(t, last, id, "consistent=true"); code != http.StatusServiceUnavailable {
		t.Fatalf("consistent read without quorum: status %d, want 503", code)
	}
	for _, q := range []string{"stale=true", "", "stale=false"} {
		if code, j, _ := getJob(t, last, id, q); code != http.StatusOK || j.ID != id {
			t.Fatalf("GET ?%s without quorum: status %d, job %+v", q, code, j)
		}
	}
}
