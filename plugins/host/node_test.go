package host

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestNodePlugin runs plugins/examples/node, a plugin written in Node.js from
// the protocol document alone, through the plugin manager: it must start,
// be fingerprinted and run one job. npm installs its packages into a
// temporary copy (the repository holds no node_modules).
func TestNodePlugin(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node missing: no node on PATH (install Node.js >= 18 and npm)")
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Skip("npm missing: no npm on PATH (install npm)")
	}
	// The copy keeps the repository's layout: the plugin loads ../../proto.
	root := t.TempDir()
	src := filepath.Join(root, "plugins", "examples", "node")
	copyFiles(t, "../examples/node", src, "package.json", "package-lock.json", "reverse.js")
	copyFiles(t, "../proto", filepath.Join(root, "plugins", "proto"), "worker.proto", "health.proto", "goplugin.proto")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	install := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund", "--loglevel=error")
	install.Dir = src
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("npm ci in %s: %v\n%s", src, err, out)
	}

	dir := t.TempDir()
	wrapper := "#!/bin/sh\nexec " + node + " " + filepath.Join(src, "reverse.js") + "\n"
	if err := os.WriteFile(filepath.Join(dir, "reverse"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	m := startManager(t, Config{Dir: dir, StartTimeout: 30 * time.Second})
	s := statusOf(t, m, "reverse")
	if s.Status != StateReady || s.Version != "1.0.0" || s.Description != "reverses the payload text" {
		t.Fatalf("node plugin: %+v", s)
	}
	rec := &recorder{}
	res, err := m.Run(context.Background(), "reverse", RunRequest{JobID: "n1", Attempt: 1, Payload: []byte("corral")}, rec)
	if err != nil || string(res) != "larroc" {
		t.Fatalf("Run = %q, %v", res, err)
	}
	if lines := rec.Lines(); len(lines) != 1 || lines[0] != "plugin: reversing 6 characters" {
		t.Errorf("logs = %q", lines)
	}
	if p := rec.Progresses(); len(p) != 1 || p[0] != 50 {
		t.Errorf("progress = %v", p)
	}
	_, err = m.Run(context.Background(), "reverse", RunRequest{JobID: "n2", Attempt: 1}, nil)
	if je := asJobError(t, err); !je.NonRetryable || !strings.Contains(je.Message, "nothing to reverse") {
		t.Errorf("empty payload: %+v", je)
	}
}

// copyFiles copies the named files from one directory to another.
func copyFiles(t *testing.T, from, to string, names ...string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		data, err := os.ReadFile(filepath.Join(from, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
