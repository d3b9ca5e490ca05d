package worker

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The logs of purged jobs are removed; those of live jobs, and young
// directories of jobs this node may not know yet, stay.
func TestJobLogSweepRemovesPurgedJobs(t *testing.T) {
	logs := NewLogs(t.TempDir())
	for _, id := range []string{"live", "purged", "young"} {
		w, err := logs.create(id, 1)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte("line\n"))
		w.Close()
	}
	old := time.Now().Add(-time.Hour)
	for _, id := range []string{"live", "purged"} {
		if err := os.Chtimes(filepath.Join(logs.dir, id), old, old); err != nil {
			t.Fatal(err)
		}
	}
	exists := func(id string) bool { return id == "live" }
	n, err := logs.sweep(exists, time.Minute, time.Now())
	if err != nil || n != 1 {
		t.Fatalf("sweep removed %d (err %v), want 1", n, err)
	}
	for id, want := range map[string]bool{"live": true, "purged": false, "young": true} {
		_, err := os.Stat(filepath.Join(logs.dir, id))
		if got := err == nil; got != want {
			t.Errorf("log dir %s present = %v, want %v", id, got, want)
		}
	}
	if n, err := NewLogs(t.TempDir()).sweep(exists, 0, time.Now()); n != 0 || err != nil {
		t.Fatalf("sweep of a node that never ran a job: %d, %v", n, err)
	}
}
