package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadPeriodicBlock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.hcl")
	src := `
periodic "nightly" {
  cron     = "0 3 * * *"
  timezone = "Europe/Berlin"
  plugin   = "exec"
  payload  = { command = ["backup", "--all"] }
  queue    = "ops"
  overlap  = "allow"
  catch_up = true
}
periodic "ping" {
  cron    = "@every 10s"
  plugin  = "echo"
  payload = "{\"echo\":\"hi\"}"
}
`
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(nil, path)
	if err != nil {
		t.Fatal(err)
	}
	n := c.Periodics["nightly"]
	if n.Cron != "0 3 * * *" || n.Timezone != "Europe/Berlin" || n.Plugin != "exec" || n.Queue != "ops" || n.Overlap != "allow" || !n.CatchUp {
		t.Fatalf("nightly = %+v", n)
	}
	if string(n.Payload) != `{"command":["backup","--all"]}` {
		t.Fatalf("object payload = %s", n.Payload)
	}
	if p := c.Periodics["ping"]; string(p.Payload) != `{"echo":"hi"}` {
		t.Fatalf("string payload = %s", p.Payload)
	}
	c.DataDir = t.TempDir()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if cl := c.Clone(); string(cl.Periodics["nightly"].Payload) != string(n.Payload) {
		t.Fatal("clone lost the payload")
	}
}

func TestValidatePeriodicNamesTheBlock(t *testing.T) {
	c := Default()
	c.DataDir = t.TempDir()
	c.Periodics = map[string]Periodic{"bad": {Cron: "every day", Plugin: "echo"}, "nop": {Cron: "@daily"}, "ov": {Cron: "@daily", Plugin: "echo", Overlap: "maybe"}}
	err := c.Validate()
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{"periodic.bad:", "every day", "periodic.nop:", "plugin is required", "periodic.ov:", "overlap"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q lacks %q", err, want)
		}
	}
}
