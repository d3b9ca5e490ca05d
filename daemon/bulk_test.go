package daemon_test

import (
	"context"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/corral-dev/corral/daemon/api"
	"github.com/corral-dev/corral/daemon/config"
	"github.com/corral-dev/corral/daemon/testcluster"
	"github.com/corral-dev/corral/queue"
)

// submitN submits n jobs of plugin to queue in one batch and returns
// their IDs.
func submitN(t *testing.T, cl *api.Client, queue, plugin string, n int) []string {
	t.Helper()
	reqs := make([]api.JobRequest, n)
	for i := range reqs {
		reqs[i] = api.JobRequest{Queue: queue, Plugin: plugin, Payload: []byte(fmt.Sprintf(`{"n":%d}`, i))}
	}
	return submitMany(t, cl, reqs)
}

// TestBulkAPI: through a follower, bad bulk filters are refused with 400
// and a one-line message before raft; a bulk cancel and a bulk retry act
// on exactly the jobs of their filter in batched raft entries; a dry run
// counts without writing; DELETE /v1/queues/{name} refuses a queue with
// jobs and deletes an empty one.
func TestBulkAPI(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Nodes: 3, Configure: func(_ int, cfg *config.Config) {
		cfg.Queues["defualt"] = config.Queue{Retention: time.Second}
	}})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f := c.Follower()
	store := c.Leader().Agent.Store()

	// Writes of the cluster's start (the config's queue) settle first.
	c.Eventually(10*time.Second, "the config's queue replicated", func() bool {
		for _, q := range f.Agent.Store().Queues() {
			if q.Name == "defualt" {
				return true
			}
		}
		return false
	})
	queuesBefore := store.Queues()
	bad := []struct {
		name string
		call func() error
		want []string
	}{
		{"retry of queued jobs", func() error {
			_, err := f.Client.BulkRetry(ctx, api.BulkRequest{State: "queued"})
			return err
		}, []string{"cannot retry queued jobs", "failed or cancelled"}},
		{"cancel of failed jobs", func() error {
			_, err := f.Client.BulkCancel(ctx, api.BulkRequest{State: "failed"})
			return err
		}, []string{"cannot cancel failed jobs", "scheduled or queued or running"}},
		{"unknown state", func() error {
			_, err := f.Client.BulkCancel(ctx, api.BulkRequest{State: "done", DryRun: true})
			return err
		}, []string{"state", `"done"`}},
		{"bad queue name", func() error {
			_, err := f.Client.BulkRetry(ctx, api.BulkRequest{Queue: "a/b"})
			return err
		}, []string{"queue name", "128"}},
		{"path as plugin", func() error {
			_, err := f.Client.BulkRetry(ctx, api.BulkRequest{Plugin: "../sh"})
			return err
		}, []string{"plugin name"}},
		{"negative older_than", func() error {
			_, err := f.Client.BulkCancel(ctx, api.BulkRequest{OlderThan: api.Duration(-time.Hour)})
			return err
		}, []string{"older_than -1h0m0s is negative"}},
		{"bad queue name to delete", func() error { return f.Client.DeleteQueue(ctx, strings.Repeat("q", 129)) }, []string{"queue name", "128"}},
	}
	for _, tc := range bad {
		assertStatus(t, tc.name, tc.call(), http.StatusBadRequest, tc.want...)
	}
	if after := store.Queues(); !reflect.DeepEqual(after, queuesBefore) || len(store.List(queue.Filter{})) != 0 {
		t.Fatalf("refused requests changed the state: queues %+v, then %+v", queuesBefore, after)
	}

	// 1,200 jobs nobody runs in "bulk", 10 in "other".
	ids := submitN(t, f.Client, "bulk", "nobody-has-this-plugin", 1200)
	others := submitN(t, f.Client, "other", "nobody-has-this-plugin", 10)
	dry, err := f.Client.BulkCancel(ctx, api.BulkRequest{Queue: "bulk", DryRun: true})
	if err != nil || dry.Count != 1200 || dry.Entries != 0 {
		t.Fatalf("dry run: %+v, %v", dry, err)
	}
	idx := store.Index()
	res, err := f.Client.BulkCancel(ctx, api.BulkRequest{Queue: "bulk", State: "queued"})
	if err != nil || res.Count != 1200 || res.Entries != 3 {
		t.Fatalf("bulk cancel of 1,200 jobs: %+v, %v; want 3 entries of up to 500", res, err)
	}
	if res.Index-idx > 10 {
		t.Fatalf("bulk cancel moved the raft index by %d", res.Index-idx)
	}
	counts := func(node *testcluster.Node, queue string) map[string]int {
		list, err := node.Client.Queues(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range list.Queues {
			if q.Name == queue {
				return q.Counts
			}
		}
		return nil
	}
	if got := counts(f, "bulk"); got["cancelled"] != 1200 || got["queued"] != 0 {
		t.Fatalf("counts after bulk cancel: %v", got)
	}
	if got := counts(f, "other"); got["queued"] != len(others) {
		t.Fatalf("bulk cancel of queue bulk touched queue other: %v", got)
	}
	res, err = f.Client.BulkRetry(ctx, api.BulkRequest{Queue: "bulk", OlderThan: api.Duration(time.Hour)})
	if err != nil || res.Count != 0 || res.Entries != 1 {
		t.Fatalf("bulk retry of jobs older than an hour: %+v, %v", res, err)
	}
	res, err = f.Client.BulkRetry(ctx, api.BulkRequest{Queue: "bulk", State: "cancelled"})
	if err != nil || res.Count != 1200 || res.Entries != 3 {
		t.Fatalf("bulk retry: %+v, %v", res, err)
	}
	if j, err := f.Client.Job(ctx, ids[0]); err != nil || j.State != "queued" || j.MaxAttempts != 25 {
		t.Fatalf("retried job: %+v, %v", j, err)
	}

	// Delete: a queue with jobs is refused and stays; an empty one goes.
	assertStatus(t, "delete queue with jobs", f.Client.DeleteQueue(ctx, "other"), http.StatusConflict, "other still holds 10 jobs (10 queued)")
	assertStatus(t, "delete unknown queue", f.Client.DeleteQueue(ctx, "nosuchqueue"), http.StatusNotFound, "nosuchqueue")
	if counts(f, "other") == nil {
		t.Fatal("refused delete removed the queue")
	}
	typo := submitN(t, f.Client, "defualt", "nobody-has-this-plugin", 1)
	if _, err := f.Client.Cancel(ctx, typo[0]); err != nil {
		t.Fatal(err)
	}
	c.Eventually(20*time.Second, "the cancelled job purged after the queue's 1s retention", func() bool {
		_, err := f.Client.Job(ctx, typo[0])
		return api.IsNotFound(err)
	})
	if err := f.Client.DeleteQueue(ctx, "defualt"); err != nil {
		t.Fatalf("delete of an empty queue: %v", err)
	}
	for _, n := range c.Nodes {
		c.Eventually(5*time.Second, "the queue gone on "+n.Name, func() bool { return counts(n, "defualt") == nil })
	}
}

// TestBulkAndDeleteACL: a bulk operation needs queue:write on its queue,
// or on every queue without one; deleting a queue needs operator:write.
func TestBulkAndDeleteACL(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Nodes: 1, SecureDefaults: true})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n := c.Nodes[0]
	root, err := n.Client.ACLBootstrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mgmt, _ := api.NewClient("http://"+n.Agent.HTTPAddr(), root.SecretID)
	if _, err := mgmt.ACLPolicyApply(ctx, api.ACLPolicy{Name: "a-writer", Rules: `queue "a" { policy = "write" }` + "\n" + `queue "b" { policy = "read" }`}); err != nil {
		t.Fatal(err)
	}
	tok, err := mgmt.ACLTokenCreate(ctx, api.ACLTokenRequest{Policies: []string{"a-writer"}})
	if err != nil {
		t.Fatal(err)
	}
	user, _ := api.NewClient("http://"+n.Agent.HTTPAddr(), tok.SecretID)
	submitN(t, mgmt, "a", "nobody-has-this-plugin", 3)
	submitN(t, mgmt, "b", "nobody-has-this-plugin", 2)

	_, err = n.Client.BulkCancel(ctx, api.BulkRequest{Queue: "a"})
	assertStatus(t, "bulk cancel without a token", err, http.StatusUnauthorized, "queue:write")
	_, err = user.BulkCancel(ctx, api.BulkRequest{Queue: "b"})
	assertStatus(t, "bulk cancel of a read-only queue", err, http.StatusForbidden, `queue:write on "b"`)
	_, err = user.BulkCancel(ctx, api.BulkRequest{State: "queued"})
	assertStatus(t, "bulk cancel over all queues", err, http.StatusForbidden, `on "b"`, "name one queue")
	res, err := user.BulkCancel(ctx, api.BulkRequest{Queue: "a"})
	if err != nil || res.Count != 3 {
		t.Fatalf("bulk cancel of a writable queue: %+v, %v", res, err)
	}
	assertStatus(t, "delete queue without operator:write", user.DeleteQueue(ctx, "a"), http.StatusForbidden, "operator:write")
	if res, err := mgmt.BulkCancel(ctx, api.BulkRequest{}); err != nil || res.Count != 2 {
		t.Fatalf("management bulk cancel over all queues: %+v, %v", res, err)
	}
}

// TestJobListCursor: paging through GET /v1/jobs with limit and cursor
// returns every job exactly once, newest first, although jobs are
// submitted between pages (some in the same entry, so with the same
// creation time); plugin and since filter; bad cursors and since values
// are refused.
func TestJobListCursor(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Nodes: 1})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl := c.Nodes[0].Client
	var ids []string
	for range 5 {
		ids = append(ids, submitN(t, cl, "", "nobody-has-this-plugin", 50)...)
	}
	other := submitN(t, cl, "", "other-plugin", 7)
	seen := map[string]int{}
	q := api.JobQuery{Plugin: "nobody-has-this-plugin", Limit: 40}
	pages := 0
	var last api.Job
	for {
		page, err := cl.JobsPage(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if page.Total == nil || *page.Total < 250 {
			t.Fatalf("page %d: total %v", pages, page.Total)
		}
		for _, j := range page.Jobs {
			seen[j.ID]++
			if j.Plugin != "nobody-has-this-plugin" {
				t.Fatalf("plugin filter let %s (%s) through", j.ID, j.Plugin)
			}
			if last.ID != "" && (j.CreatedAt.After(last.CreatedAt) || (j.CreatedAt.Equal(last.CreatedAt) && j.ID > last.ID)) {
				t.Fatalf("page %d: %s (%s) after %s (%s): not newest first", pages, j.ID, j.CreatedAt, last.ID, last.CreatedAt)
			}
			last = j
		}
		if page.NextCursor == "" {
			break
		}
		if len(page.Jobs) != 40 {
			t.Fatalf("page %d has %d jobs and a next cursor", pages, len(page.Jobs))
		}
		// Inserts between pages: newer jobs, in one entry.
		submitN(t, cl, "", "nobody-has-this-plugin", 3)
		q.Cursor = page.NextCursor
	}
	if pages != 7 {
		t.Fatalf("%d pages of 40 for 250 jobs", pages)
	}
	for _, id := range ids {
		if seen[id] != 1 {
			t.Fatalf("job %s listed %d times across pages", id, seen[id])
		}
	}
	if len(seen) != len(ids) {
		t.Fatalf("%d jobs listed, want the %d that existed at the first page", len(seen), len(ids))
	}

	// The old parameters still work next to the new ones.
	off, err := cl.JobsPage(ctx, api.JobQuery{Plugin: "other-plugin", Limit: 100})
	if err != nil || len(off.Jobs) != len(other) || off.NextCursor != "" || off.Total == nil || *off.Total != len(other) {
		t.Fatalf("plugin other-plugin: %+v, %v", off, err)
	}
	future, err := cl.JobsPage(ctx, api.JobQuery{Since: time.Now().Add(time.Hour)})
	if err != nil || len(future.Jobs) != 0 {
		t.Fatalf("since an hour from now: %d jobs, %v", len(future.Jobs), err)
	}
	recent, err := cl.JobsPage(ctx, api.JobQuery{Since: time.Now().Add(-time.Hour), Limit: 5})
	if err != nil || len(recent.Jobs) != 5 || recent.NextCursor == "" || recent.Total == nil || *recent.Total < len(ids)+len(other) {
		t.Fatalf("since an hour ago, limit 5: %d jobs, cursor %q, total %v (want every match), %v", len(recent.Jobs), recent.NextCursor, recent.Total, err)
	}
	_, err = cl.JobsPage(ctx, api.JobQuery{Cursor: "not-a-cursor"})
	assertStatus(t, "bad cursor", err, http.StatusBadRequest, "cursor", "without a cursor")
	raw := func(query string) error {
		resp, err := http.Get("http://" + c.Nodes[0].Agent.HTTPAddr() + "/v1/jobs?" + query)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			return fmt.Errorf("%s: HTTP %d, want 400", query, resp.StatusCode)
		}
		return nil
	}
	for _, query := range []string{"since=yesterday", "since=-1h", "limit=-1", "cursor=" + strings.Repeat("A", 400)} {
		if err := raw(query); err != nil {
			t.Fatal(err)
		}
	}
	if err := raw("since=1h&offset=3"); err == nil {
		t.Fatal("a valid since was refused")
	}
}
