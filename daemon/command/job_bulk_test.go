package command

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/corral-dev/corral/daemon/api"
)

// TestBulkRetryAndCancel: filter flags select the bulk form; without -yes
// it counts first and asks on a terminal, refuses without one; -dry-run
// only counts; an ID together with filters is a usage error.
func TestBulkRetryAndCancel(t *testing.T) {
	f := newFakeAPI(t)
	f.bulkMatch = 1000
	env := map[string]string{EnvAddress: f.srv.URL}
	terminal := func(stdin string, args ...string) cliResult {
		return runCLIMeta(t, env, Meta{Stdin: strings.NewReader(stdin), StdinTerminal: true}, args...)
	}
	bulks := func() []string {
		f.mu.Lock()
		defer f.mu.Unlock()
		out := f.bulks
		f.bulks = nil
		return out
	}

	r := f.cli("job", "retry", "-queue", "mail", "-state", "failed", "-plugin", "exec", "-older-than", "1h", "-yes")
	expect(t, r, 0, []string{"Retried 1000 jobs (2 raft entries)"}, nil)
	if got := bulks(); len(got) != 1 || got[0] != `/v1/jobs/retry {"queue":"mail","state":"failed","plugin":"exec","older_than":"1h0m0s"}` {
		t.Fatalf("requests %q: want one real run with every filter", got)
	}

	r = f.cli("job", "cancel", "-state", "queued")
	expect(t, r, 1, nil, []string{"error: cancel 1000 jobs needs confirmation, and stdin is not a terminal: pass -yes"})
	if strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("refusal is not one line: %q", r.stderr)
	}
	if got := bulks(); len(got) != 1 || !strings.Contains(got[0], `"dry_run":true`) {
		t.Fatalf("without -yes and a terminal: requests %q, want only a dry run", got)
	}

	r = terminal("y\n", "job", "cancel", "-state", "queued")
	expect(t, r, 0, []string{"Cancelled 1000 jobs (2 raft entries)"}, []string{"Cancel 1000 jobs? [y/N] "})
	if got := bulks(); len(got) != 2 || !strings.Contains(got[0], `"dry_run":true`) || strings.Contains(got[1], "dry_run") {
		t.Fatalf("confirmed on a terminal: requests %q, want a dry run then a real run", got)
	}
	for _, answer := range []string{"n\n", "\n", ""} {
		r = terminal(answer, "job", "retry", "-state", "failed")
		expect(t, r, 1, nil, []string{"Retry 1000 jobs? [y/N] ", "not confirmed; nothing retried"})
		if got := bulks(); len(got) != 1 {
			t.Fatalf("declined with %q: requests %q, want only the dry run", answer, got)
		}
	}

	r = f.cli("job", "retry", "-plugin", "exec", "-dry-run")
	expect(t, r, 0, []string{"1000 jobs match (dry run: nothing retried)"}, nil)
	r = f.cli("job", "retry", "-plugin", "exec", "-dry-run", "-json")
	var res api.BulkResult
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || res.Count != 1000 || !res.DryRun {
		t.Fatalf("dry run -json %q: %v", r.stdout, err)
	}
	if got := bulks(); len(got) != 2 {
		t.Fatalf("dry runs made %d requests", len(got))
	}

	f.bulkMatch = 0
	expect(t, terminal("", "job", "retry", "-queue", "mail"), 0, []string{"No jobs match; nothing to retry"}, nil)
	bulks()

	expect(t, f.cli("job", "retry", "-state", "queued", "-yes"), 1, nil,
		[]string{"error: invalid job filter: cannot retry queued jobs (state must be failed or cancelled)"})
	expect(t, f.cli("job", "retry", "01JOB", "-queue", "mail"), 1, nil,
		[]string{"give either a job ID or filter flags", "usage: corral job retry [options] (ID | -queue Q"})
	expect(t, f.cli("job", "cancel", "01JOB", "-yes"), 1, nil, []string{"give either a job ID or filter flags"})
	expect(t, f.cli("job", "cancel"), 1, nil, []string{"expected a job ID or filter flags (-queue, -state, -plugin, -older-than)"})
	expect(t, f.cli("job", "cancel", "a", "b"), 1, nil, []string{"expected one job ID, got 2 arguments"})
	expect(t, f.cli("job", "retry", "-older-than", "-1h", "-yes"), 1, nil, []string{"-older-than=-1h0m0s must not be negative"})
	if got := bulks(); len(got) != 0 {
		t.Fatalf("usage errors sent requests: %q", got)
	}
}

// TestJobListPaging: job list fetches pages until -limit jobs, shows a
// priority column and says how to see more.
func TestJobListPaging(t *testing.T) {
	f := newFakeAPI(t)
	for i := range 250 {
		f.addJob(fmt.Sprintf("J%04d", i), "queued")
	}
	r := f.cli("job", "list")
	expect(t, r, 0, []string{"Priority", "J0249", "J0150", "Showing the newest 100 of 250 matching jobs; -limit=N shows more, -limit=0 all"}, nil)
	if strings.Contains(r.stdout, "J0149") {
		t.Error("the default list shows more than 100 jobs")
	}
	r = f.cli("job", "list", "-limit", "0", "-json")
	var list api.JobList
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list.Jobs) != 250 || list.NextCursor != "" {
		t.Fatalf("-limit 0: %d jobs, cursor %q, %v", len(list.Jobs), list.NextCursor, err)
	}
	seen := map[string]bool{}
	for _, j := range list.Jobs {
		if seen[j.ID] {
			t.Fatalf("job %s listed twice", j.ID)
		}
		seen[j.ID] = true
	}
	r = f.cli("job", "list", "-limit", "1500", "-plugin", "echo", "-since", "1h")
	expect(t, r, 0, []string{"J0000"}, nil)
	if q := f.lastRequest(); !strings.Contains(q, "plugin=echo") || !strings.Contains(q, "since=") || !strings.Contains(q, "limit=1000") {
		t.Errorf("list request %q: want plugin, since and a page of 1000", q)
	}
	if strings.Contains(r.stdout, "Showing") {
		t.Error("footer shown although every job is listed")
	}
	expect(t, f.cli("job", "list", "-limit", "-1"), 1, nil, []string{"-limit=-1 must be 0 (all) or more"})
}

// TestQueueDelete: an empty queue is deleted; the server's refusal of a
// queue with jobs is shown as one line.
func TestQueueDelete(t *testing.T) {
	f := newFakeAPI(t)
	expect(t, f.cli("queue", "delete", "defualt"), 0, []string{"Queue defualt deleted"}, nil)
	r := f.cli("queue", "delete", "mail")
	expect(t, r, 1, nil, []string{"error: queue is not empty: mail still holds 7 jobs (7 failed)"})
	if strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("refusal is not one line: %q", r.stderr)
	}
	expect(t, f.cli("queue", "delete", "nope"), 1, nil, []string{"queue nope not found"})
	expect(t, f.cli("queue", "delete"), 1, nil, []string{"expected QUEUE"})
}
