package daemon_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/corral-dev/corral/daemon/api"
	"github.com/corral-dev/corral/daemon/testcluster"
	"github.com/corral-dev/corral/queue"
)

// TestSubMillisecondTimeoutRejected: a timeout under 1ms (a JSON number
// is nanoseconds) is refused with a 400 that says how to write it, and no
// job is created.
func TestSubMillisecondTimeoutRejected(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Nodes: 1})
	n := c.Leader()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for _, d := range []time.Duration{30, 999 * time.Microsecond} {
		_, err := n.Client.Submit(ctx, api.JobRequest{Plugin: "echo", Timeout: api.Duration(d)})
		var se *api.StatusError
		if !errors.As(err, &se) || se.Code != http.StatusBadRequest || !strings.Contains(se.Message, `"30s"`) {
			t.Fatalf("timeout %s: got %v, want a 400 that shows how to write a duration", d, err)
		}
	}
	if jobs := n.Agent.Store().List(queue.Filter{}); len(jobs) != 0 {
		t.Fatalf("%d jobs created by rejected submits", len(jobs))
	}
}

// TestTimedOutJobDoesNotFailItsNeighbours: a job that times out ends only
// its own plugin call; another job running in the same plugin process at
// the same time succeeds.
func TestTimedOutJobDoesNotFailItsNeighbours(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Nodes: 1, Builtins: true})
	n := c.Leader()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	slow, err := n.Client.Submit(ctx, api.JobRequest{Plugin: "echo", Payload: []byte(`{"sleep":"1m"}`),
		Timeout: api.Duration(200 * time.Millisecond), MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	neighbour, err := n.Client.Submit(ctx, api.JobRequest{Plugin: "echo", Payload: []byte(`{"echo":"fine","sleep":"1s"}`)})
	if err != nil {
		t.Fatal(err)
	}
	state := func(id string) queue.State {
		j, _ := n.Agent.Store().Get(id)
		if j == nil {
			return queue.StateInvalid
		}
		return j.State
	}
	c.Eventually(20*time.Second, "both jobs end", func() bool {
		return state(slow.ID).Terminal() && state(neighbour.ID).Terminal()
	})
	s, _ := n.Agent.Store().Get(slow.ID)
	if s.State != queue.StateFailed || !strings.Contains(s.Error, "timed out") && !strings.Contains(s.Error, "timeout") {
		t.Fatalf("slow job: %s %q, want failed by its timeout", s.State, s.Error)
	}
	// On its first attempt: a retry after the timeout took the plugin
	// process down would hide the failure.
	if nb, _ := n.Agent.Store().Get(neighbour.ID); nb.State != queue.StateSucceeded || string(nb.Result) != "fine" || nb.Attempt != 1 {
		t.Fatalf("neighbour: %s %q %q (attempt %d), want succeeded with its echo on attempt 1", nb.State, nb.Error, nb.Result, nb.Attempt)
	}
}
