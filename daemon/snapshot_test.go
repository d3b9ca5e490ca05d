package daemon_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"testing"
	"time"

	"github.com/corral-dev/corral/daemon/api"
	"github.com/corral-dev/corral/daemon/testcluster"
	"github.com/corral-dev/corral/queue"
)

// stateOf returns every job of n's replica by ID, and its queues.
func stateOf(n *testcluster.Node) (map[string]*queue.Job, []queue.QueueInfo) {
	jobs := map[string]*queue.Job{}
	for _, j := range n.Agent.Store().List(queue.Filter{}) {
		jobs[j.ID] = j
	}
	return jobs, n.Agent.Store().Queues()
}

func follower(c *testcluster.Cluster) *testcluster.Node {
	l := c.Leader()
	for _, n := range c.Nodes {
		if n != l {
			return n
		}
	}
	return l
}

// TestSnapshotSaveRestore saves a 3-node cluster holding 10,000 jobs (in
// three queues, one paused, some cancelled) through a follower, refuses a
// corrupt and a truncated copy in a fresh cluster without changing it, then
// restores the good one there: every node of the fresh cluster then holds
// exactly the saved jobs and queues.
func TestSnapshotSaveRestore(t *testing.T) {
	const total = 10_000
	src := testcluster.Start(t, testcluster.Options{Nodes: 3})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var ids []string
	for b := 0; b < total/1000; b++ {
		reqs := make([]api.JobRequest, 1000)
		for i := range reqs {
			reqs[i] = api.JobRequest{Queue: fmt.Sprintf("q%d", (b*1000+i)%3), Plugin: probe, Priority: i % 7,
				Payload: json.RawMessage(fmt.Sprintf(`{"n":%d}`, b*1000+i)), UniqueKey: fmt.Sprintf("k%d", b*1000+i)}
		}
		ids = append(ids, submitMany(t, src.Nodes[b%3].Client, reqs)...)
	}
	for _, id := range ids[:25] {
		if _, err := src.Leader().Client.Cancel(ctx, id); err != nil {
			t.Fatalf("cancel: %v", err)
		}
	}
	if err := src.Leader().Client.PauseQueue(ctx, "q1"); err != nil {
		t.Fatalf("pause: %v", err)
	}
	srcLeader := src.Leader()
	for _, n := range src.Nodes {
		c := n
		src.Eventually(30*time.Second, n.Name+" caught up", func() bool {
			return c.Agent.Store().Index() == srcLeader.Agent.Store().Index()
		})
	}
	wantJobs, wantQueues := stateOf(srcLeader)
	if len(wantJobs) != total {
		t.Fatalf("source holds %d jobs, want %d", len(wantJobs), total)
	}

	rc, err := follower(src).Client.SnapshotSave(ctx)
	if err != nil {
		t.Fatalf("save through a follower: %v", err)
	}
	archive, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatalf("read snapshot: %v", err)
	}
	src.Stop()

	dst := testcluster.Start(t, testcluster.Options{Nodes: 3})
	pre := submitMany(t, dst.Leader().Client, []api.JobRequest{{Plugin: probe, Queue: "other"}})
	before := dst.Leader().Agent.Store().Index()

	corrupt := bytes.Clone(archive)
	corrupt[len(corrupt)/2] ^= 0x55
	truncated := archive[:len(archive)*2/3]
	for name, bad := range map[string][]byte{"corrupt": corrupt, "truncated": truncated, "empty": nil} {
		err := follower(dst).Client.SnapshotRestore(ctx, bytes.NewReader(bad))
		var se *api.StatusError
		if !errors.As(err, &se) || se.Code != 400 {
			t.Fatalf("restore of a %s file: %v, want a 400", name, err)
		}
		t.Logf("restore of a %s file refused: %v", name, err)
	}
	if idx := dst.Leader().Agent.Store().Index(); idx != before {
		t.Fatalf("refused restores changed the state: index %d, was %d", idx, before)
	}
	if _, ok := dst.Leader().Agent.Store().Get(pre[0]); !ok {
		t.Fatal("refused restores lost a job")
	}

	if err := follower(dst).Client.SnapshotRestore(ctx, bytes.NewReader(archive)); err != nil {
		t.Fatalf("restore through a follower: %v", err)
	}
	for _, n := range dst.Nodes {
		var diff string
		dst.Eventually(30*time.Second, n.Name+" holds exactly the saved state", func() bool {
			gotJobs, gotQueues := stateOf(n)
			switch {
			case len(gotJobs) != len(wantJobs):
				diff = fmt.Sprintf("%d jobs, want %d", len(gotJobs), len(wantJobs))
				return false
			case !reflect.DeepEqual(gotQueues, wantQueues):
				diff = fmt.Sprintf("queues %+v, want %+v", gotQueues, wantQueues)
				return false
			}
			for id, want := range wantJobs {
				if got := gotJobs[id]; !reflect.DeepEqual(got, want) {
					diff = fmt.Sprintf("job %s: %+v, want %+v", id, got, want)
					return false
				}
			}
			return true
		})
		if t.Failed() {
			t.Fatalf("%s: %s", n.Name, diff)
		}
	}
	// The restored cluster keeps working: a new submit lands and a unique
	// key from the snapshot still dedupes.
	resp, err := dst.Nodes[2].Client.Submit(ctx, api.JobRequest{Plugin: probe, UniqueKey: "k42"})
	if err != nil || !resp.Existing {
		t.Fatalf("submit with a restored unique key: %+v, %v; want the existing job", resp, err)
	}
}
