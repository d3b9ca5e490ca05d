package config

import (
	"os"
	"path/filepath"
	"testing"
)

func TestEnableDebug(t *testing.T) {
	path := filepath.Join(t.TempDir(), "debug.hcl")
	if err := os.WriteFile(path, []byte("data_dir = \"/tmp/x\"\nenable_debug = true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(Default(), path)
	if err != nil {
		t.Fatal(err)
	}
	if !c.EnableDebug {
		t.Fatal("enable_debug = true did not set EnableDebug")
	}
}
