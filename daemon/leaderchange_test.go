package daemon_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/corral-dev/corral/daemon/api"
	"github.com/corral-dev/corral/daemon/testcluster"
	"github.com/corral-dev/corral/queue"
)

// TestJobsSurviveLeaderChangesUnderLoad: while clients submit jobs through
// every node and the jobs run on every node, leadership moves three times.
// Workers reconnect to each new leader and re-announce their leases: every
// acknowledged job succeeds, exactly one attempt of each is recorded as
// the success, and its result is the one its own attempt produced.
func TestJobsSurviveLeaderChangesUnderLoad(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Nodes: 3, Builtins: true})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var (
		mu    sync.Mutex
		acked = map[string]string{} // job ID -> expected result
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 6; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				n := c.Nodes[(w+i)%len(c.Nodes)]
				text := fmt.Sprintf("w%d-%d", w, i)
				resp, err := n.Client.Submit(ctx, api.JobRequest{Plugin: "echo", UniqueKey: text,
					Payload: []byte(fmt.Sprintf(`{"echo":%q,"sleep":"50ms"}`, text))})
				if err != nil {
					continue // not acknowledged: nothing to check
				}
				mu.Lock()
				acked[resp.ID] = text
				mu.Unlock()
			}
		}()
	}
	for move := 0; move < 3; move++ {
		c.Eventually(20*time.Second, "jobs acknowledged", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(acked) >= 30*(move+1)
		})
		old := c.Leader()
		if err := old.Agent.Raft().LeadershipTransfer().Error(); err != nil {
			t.Logf("leadership transfer %d: %v", move, err)
		}
		c.Eventually(20*time.Second, "a new leader", func() bool {
			for _, n := range c.Nodes {
				if n != old && n.Agent.Raft().State().String() == "Leader" {
					return true
				}
			}
			return false
		})
	}
	close(stop)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	leader := c.Leader()
	c.Eventually(60*time.Second, "every acknowledged job ends", func() bool {
		for id := range acked {
			if j, ok := leader.Agent.Store().Get(id); !ok || !j.State.Terminal() {
				return false
			}
		}
		return true
	})
	for id, want := range acked {
		j, _ := leader.Agent.Store().Get(id)
		if j.State != queue.StateSucceeded || string(j.Result) != want {
			t.Fatalf("job %s: %s with result %q, want succeeded with %s (attempts %+v)", id, j.State, j.Result, want, j.Attempts)
		}
		wins := 0
		for _, a := range j.Attempts {
			if a.Outcome == queue.OutcomeSucceeded {
				wins++
				if a.Node != j.Node || a.Token == 0 {
					t.Fatalf("job %s: success recorded from attempt %+v, but the job ended on %s", id, a, j.Node)
				}
			}
		}
		if wins != 1 {
			t.Fatalf("job %s: %d successful attempts recorded, want 1: %+v", id, wins, j.Attempts)
		}
	}
	t.Logf("%d acknowledged jobs through 3 leader changes", len(acked))
}

// TestInternalHTTPEndpointsAreGone: node-to-node calls no longer ride the
// public API.
func TestInternalHTTPEndpointsAreGone(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Nodes: 1})
	for _, path := range []string{"/v1/internal/poll", "/v1/internal/heartbeat", "/v1/internal/complete"} {
		resp, err := http.Post("http://"+c.Nodes[0].Agent.HTTPAddr()+path, "application/json", strings.NewReader(`{"node":"x","slots":{"echo":1}}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("POST %s: %d, want 404", path, resp.StatusCode)
		}
	}
}
