package testcluster

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  string
)

// CorralBinary builds the corral binary once per test process into a temp
// dir (see RemoveBinary) and returns its path.
func CorralBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		out, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			buildErr = "go env GOMOD: " + err.Error()
			return
		}
		root := filepath.Dir(strings.TrimSpace(string(out)))
		dir, err := os.MkdirTemp("", "corral-bin-")
		if err != nil {
			buildErr = err.Error()
			return
		}
		binPath = filepath.Join(dir, "corral")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/corral")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = "build corral: " + err.Error() + ": " + string(out)
		}
	})
	if buildErr != "" {
		t.Fatal(buildErr)
	}
	return binPath
}

// RemoveBinary deletes the binary built by CorralBinary; call it from
// TestMain after m.Run.
func RemoveBinary() {
	if binPath != "" {
		_ = os.RemoveAll(filepath.Dir(binPath))
	}
}
