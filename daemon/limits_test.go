package daemon_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/corral-dev/corral/daemon/api"
	"github.com/corral-dev/corral/daemon/config"
	"github.com/corral-dev/corral/daemon/testcluster"
	"github.com/corral-dev/corral/queue"
)

// TestSubmitLimits checks the request limits a client sees through the
// HTTP API of a one-node cluster: an oversized payload is refused with
// 413, a batch with one invalid job is refused whole (no job of it lands),
// and a result over limits.max_result_bytes fails the job instead of
// entering the raft log.
func TestSubmitLimits(t *testing.T) {
	const maxPayload, maxResult = 128, 32
	c := testcluster.Start(t, testcluster.Options{Nodes: 1, Builtins: true, Configure: func(_ int, cfg *config.Config) {
		cfg.Limits.MaxPayloadBytes = maxPayload
		cfg.Limits.MaxResultBytes = maxResult
	}})
	n := c.Nodes[0]

	// jobsOf lists the jobs of a plugin no node has, in the replicated
	// state: nothing runs them, so they stay as submitted.
	jobsOf := func(plugin string) []*queue.Job {
		var out []*queue.Job
		for _, j := range n.Agent.Store().List(queue.Filter{}) {
			if j.Plugin == plugin {
				out = append(out, j)
			}
		}
		return out
	}
	statusOf := func(err error) int {
		var se *api.StatusError
		if !errors.As(err, &se) {
			t.Fatalf("submit error %v (%T), want an HTTP status error", err, err)
		}
		return se.Code
	}
	bigPayload := []byte(`"` + strings.Repeat("x", maxPayload+1) + `"`)

	t.Run("payload over the limit is refused", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := n.Client.Submit(ctx, api.JobRequest{Plugin: "idle-single", Payload: bigPayload})
		if code := statusOf(err); code != http.StatusRequestEntityTooLarge || !strings.Contains(err.Error(), "max_payload_bytes") {
			t.Fatalf("oversized payload: status %d, error %v; want 413 naming limits.max_payload_bytes", code, err)
		}
		if got := jobsOf("idle-single"); len(got) != 0 {
			t.Fatalf("refused submit left %d jobs", len(got))
		}
		// At the limit it is accepted.
		atLimit := []byte(`"` + strings.Repeat("x", maxPayload) + `"`)
		if _, err := n.Client.Submit(ctx, api.JobRequest{Plugin: "idle-single", Payload: atLimit}); err != nil {
			t.Fatalf("payload at the limit: %v", err)
		}
		if got := jobsOf("idle-single"); len(got) != 1 {
			t.Fatalf("after the submit at the limit: %d jobs, want 1", len(got))
		}
	})

	t.Run("a batch with one invalid job changes nothing", func(t *testing.T) {
		good := api.JobRequest{Plugin: "idle-batch", Payload: []byte(`{"n":1}`)}
		for _, tc := range []struct {
			name string
			bad  api.JobRequest
			code int
		}{
			{"priority out of range", api.JobRequest{Plugin: "idle-batch", Priority: queue.MaxPriority + 1}, http.StatusBadRequest},
			{"bad queue name", api.JobRequest{Plugin: "idle-batch", Queue: "no spaces"}, http.StatusBadRequest},
			{"negative max_attempts", api.JobRequest{Plugin: "idle-batch", MaxAttempts: -1}, http.StatusBadRequest},
			{"oversized payload", api.JobRequest{Plugin: "idle-batch", Payload: bigPayload}, http.StatusRequestEntityTooLarge},
		} {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			resp, err := n.Client.SubmitBatch(ctx, []api.JobRequest{good, tc.bad, good})
			cancel()
			if err == nil {
				t.Fatalf("%s: batch accepted: %+v", tc.name, resp)
			}
			if code := statusOf(err); code != tc.code || !strings.Contains(err.Error(), "jobs[1]") {
				t.Fatalf("%s: status %d, error %v; want %d naming jobs[1]", tc.name, code, err, tc.code)
			}
			if got := jobsOf("idle-batch"); len(got) != 0 {
				t.Fatalf("%s: the refused batch left %d jobs, want none", tc.name, len(got))
			}
		}
	})

	t.Run("result over the limit fails the job", func(t *testing.T) {
		fits := submitJob(t, n.Client, api.JobRequest{Plugin: "echo",
			Payload: []byte(`{"echo":"` + strings.Repeat("r", maxResult) + `"}`)})
		big := submitJob(t, n.Client, api.JobRequest{Plugin: "echo", MaxAttempts: 5,
			Payload: []byte(`{"echo":"` + strings.Repeat("r", maxResult+1) + `"}`)})
		j := waitFor(t, n.Client, fits, 20*time.Second, "the job to end", inState("succeeded", "failed"))
		if j.State != "succeeded" || len(j.Result) == 0 {
			t.Fatalf("result at the limit: state %s, result %q, error %q", j.State, j.Result, j.Error)
		}
		j = waitFor(t, n.Client, big, 20*time.Second, "the job to end", inState("succeeded", "failed", "scheduled"))
		if j.State != "failed" || j.Attempt != 1 || len(j.Result) != 0 || !strings.Contains(j.Error, "max_result_bytes") {
			t.Fatalf("oversized result: state %s after %d attempts, result %q, error %q; want failed at once (not retried), no result, an error naming limits.max_result_bytes",
				j.State, j.Attempt, j.Result, j.Error)
		}
		if sj, ok := n.Agent.Store().Get(big); !ok || len(sj.Result) != 0 {
			t.Fatalf("the oversized result reached the replicated state: %+v", sj)
		}
	})
}
