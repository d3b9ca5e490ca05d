package main_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSnapshotCLI: `corral operator snapshot save` writes a file that
// `inspect` verifies offline; `restore` of a truncated copy fails with a
// clear one-line error and changes nothing; `restore` of the file brings
// back the saved state (a job submitted after the save is gone).
func TestSnapshotCLI(t *testing.T) {
	ports := freePorts(t, 3)
	agent := startAgent(t, devNode(ports), ports[0], devArgs(t.TempDir(), ports)...)
	addr := agent.httpURL
	saved := submitID(t, addr, "-queue", "mail", "no-such-plugin", `{"to":"a@example.com"}`)

	file := filepath.Join(t.TempDir(), "backup.snap")
	if out, stderr, code := cli(t, addr, "operator", "snapshot", "save", file); code != 0 || !strings.Contains(out, "Saved snapshot") {
		t.Fatalf("snapshot save: exit %d: %s %s", code, out, stderr)
	}
	out, stderr, code := cli(t, addr, "operator", "snapshot", "inspect", file)
	if code != 0 || !strings.Contains(out, "Jobs") || !strings.Contains(out, "mail") {
		t.Fatalf("snapshot inspect: exit %d: %s %s", code, out, stderr)
	}

	later := submitID(t, addr, "-queue", "mail", "no-such-plugin", `{}`)
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "truncated.snap")
	if err := os.WriteFile(bad, data[:len(data)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, code = cli(t, addr, "operator", "snapshot", "restore", bad)
	if code != 1 || !strings.Contains(stderr, "not a valid corral snapshot archive") || !strings.Contains(stderr, "nothing was changed") {
		t.Fatalf("restore of a truncated file: exit %d, stderr %q", code, stderr)
	}
	if _, stderr, code := cli(t, addr, "operator", "snapshot", "inspect", bad); code != 1 || !strings.Contains(stderr, "not a valid corral snapshot archive") {
		t.Fatalf("inspect of a truncated file: exit %d, stderr %q", code, stderr)
	}
	if st := jobState(t, addr, later); st != "queued" {
		t.Fatalf("after the refused restore the later job is %q, want queued", st)
	}

	if out, stderr, code := cli(t, addr, "operator", "snapshot", "restore", file); code != 0 {
		t.Fatalf("snapshot restore: exit %d: %s %s", code, out, stderr)
	}
	eventually(t, 10*time.Second, "the saved state is back", func() bool {
		return jobState(t, addr, saved) == "queued" && jobState(t, addr, later) == ""
	})
}
