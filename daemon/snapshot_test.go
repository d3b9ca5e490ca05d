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

// retrying calls f until it succeeds or a minute passes: test clusters run
// with short raft timeouts, so under -race a leader change can cut a call
// short. Every retried call here is idempotent (unique keys, restores).
func retrying(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		t.Logf("%s: %v (retrying)", what, err)
		time.Sleep(100 * time.Millisecond)
	}
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
		retrying(t, "submit batch", func() error {
			resp, err := src.Nodes[b%3].Client.SubmitBatch(ctx, reqs)
			if err == nil {
				for _, j := range resp.Jobs {
					ids = append(ids, j.ID)
				}
			}
			return err
		})
	}
	for _, id := range ids[:25] {
		retrying(t, "cancel", func() error {
			j, err := src.Nodes[0].Client.Cancel(ctx, id)
			if err != nil && j == nil {
				if got, ok := src.Nodes[0].Agent.Store().Get(id); ok && got.State == queue.StateCancelled {
					return nil
				}
			}
			return err
		})
	}
	retrying(t, "pause", func() error { return src.Nodes[0].Client.PauseQueue(ctx, "q1") })
	src.WaitCaughtUp()
	wantJobs, wantQueues := stateOf(src.Leader())
	if len(wantJobs) != total {
		t.Fatalf("source holds %d jobs, want %d", len(wantJobs), total)
	}

	var archive []byte
	retrying(t, "save through a follower", func() error {
		rc, err := src.Follower().Client.SnapshotSave(ctx)
		if err != nil {
			return err
		}
		defer rc.Close()
		archive, err = io.ReadAll(rc)
		return err
	})
	src.Stop()

	dst := testcluster.Start(t, testcluster.Options{Nodes: 3})
	var pre string
	retrying(t, "submit", func() error {
		resp, err := dst.Nodes[0].Client.Submit(ctx, api.JobRequest{Plugin: probe, Queue: "other", UniqueKey: "pre"})
		if err == nil {
			pre = resp.ID
		}
		return err
	})
	// Every node must hold "pre" before the refused restores.
	dst.WaitCaughtUp()
	beforeJobs, beforeQueues := stateOf(dst.Nodes[0])

	corrupt := bytes.Clone(archive)
	corrupt[len(corrupt)/2] ^= 0x55
	truncated := archive[:len(archive)*2/3]
	for name, bad := range map[string][]byte{"corrupt": corrupt, "truncated": truncated, "empty": nil} {
		retrying(t, "restore of a "+name+" file", func() error {
			err := dst.Follower().Client.SnapshotRestore(ctx, bytes.NewReader(bad))
			var se *api.StatusError
			if !errors.As(err, &se) || se.Code != 400 {
				if err == nil {
					t.Fatalf("restore of a %s file succeeded", name)
				}
				return fmt.Errorf("got %v, want a 400", err)
			}
			t.Logf("restore of a %s file refused: %v", name, err)
			return nil
		})
	}
	dst.WaitCaughtUp()
	for _, n := range dst.Nodes {
		jobs, queues := stateOf(n)
		if _, ok := jobs[pre]; !ok || len(jobs) != len(beforeJobs) || !reflect.DeepEqual(queues, beforeQueues) {
			t.Fatalf("%s: refused restores changed the state: %d jobs, queues %+v; before %d jobs, queues %+v",
				n.Name, len(jobs), queues, len(beforeJobs), beforeQueues)
		}
	}

	retrying(t, "restore through a follower", func() error {
		return dst.Follower().Client.SnapshotRestore(ctx, bytes.NewReader(archive))
	})
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
	retrying(t, "submit with a restored unique key", func() error {
		resp, err := dst.Nodes[2].Client.Submit(ctx, api.JobRequest{Plugin: probe, UniqueKey: "k42"})
		if err == nil && !resp.Existing {
			t.Fatalf("submit with a restored unique key made a new job %s; want the existing one", resp.ID)
		}
		return err
	})
}
