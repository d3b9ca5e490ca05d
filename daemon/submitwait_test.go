package daemon_test

import (
	"context"
	"testing"
	"time"

	"github.com/corral-dev/corral/daemon/api"
	"github.com/corral-dev/corral/daemon/testcluster"
)

// TestSubmitAndWait: POST /v1/jobs?wait= answers once the job has ended,
// with its result, through the leader and through a follower; when the
// wait ends first, the answer carries the job's current state.
func TestSubmitAndWait(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Nodes: 3, Builtins: true})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, n := range c.Nodes {
		resp, err := n.Client.SubmitAndWait(ctx, api.JobRequest{Plugin: "echo", Payload: []byte(`{"echo":"hi ` + n.Name + `"}`)}, 30*time.Second)
		if err != nil {
			t.Fatalf("%s: %v", n.Name, err)
		}
		if resp.Job == nil || resp.Job.ID != resp.ID || resp.Job.State != "succeeded" || string(resp.Job.Result) != `"hi `+n.Name+`"` {
			t.Fatalf("%s: answer %+v, want the succeeded job with its result", n.Name, resp.Job)
		}
	}
	resp, err := c.Nodes[1].Client.SubmitAndWait(ctx, api.JobRequest{Plugin: "echo", Payload: []byte(`{"sleep":"30s"}`)}, 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Job == nil || (resp.Job.State != "queued" && resp.Job.State != "running") {
		t.Fatalf("answer %+v, want the job still queued or running when the wait ends", resp.Job)
	}
	batch, err := c.Nodes[2].Client.SubmitBatch(ctx, []api.JobRequest{{Plugin: "echo", Payload: []byte(`{"echo":"a"}`)}})
	if err != nil || batch.Jobs[0].Job != nil {
		t.Fatalf("a submit without ?wait carries no job: %+v %v", batch, err)
	}
}
