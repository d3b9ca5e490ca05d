package config

import (
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// writeFile writes content to name inside dir and returns the path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func mustLoad(t *testing.T, base *Config, paths ...string) *Config {
	t.Helper()
	c, err := Load(base, paths...)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return c
}

func TestDefault(t *testing.T) {
	c := Default()
	if c.NodeName == "" {
		t.Error("NodeName default is empty, want the hostname")
	}
	if c.BindAddr != "0.0.0.0" || c.LogLevel != "info" {
		t.Errorf("bind/log = %q/%q", c.BindAddr, c.LogLevel)
	}
	if c.Ports != (Ports{HTTP: 4780, Raft: 4781, Serf: 4782}) {
		t.Errorf("ports = %+v", c.Ports)
	}
	if c.Server.MaxVoters != 5 || c.Server.DeadServerCleanupAfter != 30*time.Second ||
		c.Server.ServerStabilizationTime != 10*time.Second || c.Server.ReconcileInterval != time.Minute {
		t.Errorf("server = %+v", c.Server)
	}
	want := Raft{time.Second, time.Second, 500 * time.Millisecond, 8192, 120 * time.Second, 10240, 15 * time.Millisecond}
	if c.Raft != want {
		t.Errorf("raft = %+v, want %+v", c.Raft, want)
	}
	if c.Limits != (Limits{1 << 20, 64 << 10, 16 << 20, 30 * time.Second}) {
		t.Errorf("limits = %+v", c.Limits)
	}
	if DefaultQueue() != (Queue{MaxAttempts: 25, Retention: 24 * time.Hour}) {
		t.Errorf("default queue = %+v", DefaultQueue())
	}
	if DefaultPlugin("exec").Concurrency != 8 || DefaultPlugin("echo").Concurrency != 4 {
		t.Error("plugin concurrency defaults wrong")
	}
	// Defaults alone are invalid only for want of a data dir.
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "data_dir") || strings.Contains(err.Error(), ";") {
		t.Errorf("Validate(Default()) = %v, want only the data_dir problem", err)
	}
	c.DataDir = t.TempDir()
	if err := c.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

func TestDev(t *testing.T) {
	c := Dev()
	if !c.Dev || c.BindAddr != "127.0.0.1" || c.Server.BootstrapExpect != 1 || c.DataDir != "" || c.LogLevel != "info" {
		t.Errorf("dev = %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate(Dev()) = %v", err)
	}
}

const fullFile = `
node_name  = "node-1"
data_dir   = "/var/lib/corral"
bind_addr  = "0.0.0.0"
advertise_addr = "10.0.0.5"        # optional
log_level  = "debug"
ports { http = 5780  raft = 5781  serf = 5782 }
server {
  bootstrap_expect = 3
  retry_join       = ["10.0.0.6:4782", "10.0.0.7:4782"]
  max_voters       = 7
  dead_server_cleanup_after = "45s"
  server_stabilization_time = "5s"
  min_quorum = 3
  reconcile_interval = "2m"
  leave_on_terminate = true
}
raft { heartbeat_timeout = "2s"  election_timeout = "3s"  snapshot_threshold = 100
  leader_lease_timeout = "1s" snapshot_interval = "10m" trailing_logs = 500 commit_timeout = "5ms" }
serf { encrypt = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=" }
tags { zone = "a" }
plugin_dir = "/etc/corral/plugins"
plugin "exec" { concurrency = 2  config { allowed_commands = ["/usr/bin/env"] } }
plugin "http" {
  checksum = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
}
queue "default" { max_attempts = 10  concurrency = 3  retention = "48h" }
queue "mail" { retention = "1h" }
limits { max_payload_bytes = 2048  max_result_bytes = 1024  max_request_bytes = 4096  lease_ttl = "10s" }
`

func TestLoadFullFile(t *testing.T) {
	path := writeFile(t, t.TempDir(), "corral.hcl", fullFile)
	got := mustLoad(t, nil, path)

	want := Default()
	want.NodeName = "node-1"
	want.DataDir = "/var/lib/corral"
	want.AdvertiseAddr = "10.0.0.5"
	want.LogLevel = "debug"
	want.Ports = Ports{HTTP: 5780, Raft: 5781, Serf: 5782}
	want.Server = Server{
		BootstrapExpect:         3,
		RetryJoin:               []string{"10.0.0.6:4782", "10.0.0.7:4782"},
		MaxVoters:               7,
		DeadServerCleanupAfter:  45 * time.Second,
		ServerStabilizationTime: 5 * time.Second,
		MinQuorum:               3,
		ReconcileInterval:       2 * time.Minute,
		LeaveOnTerminate:        true,
	}
	want.Raft = Raft{2 * time.Second, 3 * time.Second, time.Second, 100, 10 * time.Minute, 500, 5 * time.Millisecond}
	want.Serf.Encrypt = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
	want.Tags = map[string]string{"zone": "a"}
	want.PluginDir = "/etc/corral/plugins"
	want.Plugins = map[string]Plugin{
		"exec": {Concurrency: 2, Config: []byte(`{"allowed_commands":["/usr/bin/env"]}`)},
		"http": {Concurrency: 4, Checksum: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
	}
	want.Queues = map[string]Queue{
		"default": {MaxAttempts: 10, Concurrency: 3, Retention: 48 * time.Hour},
		"mail":    {MaxAttempts: 25, Retention: time.Hour},
	}
	want.Limits = Limits{2048, 1024, 4096, 10 * time.Second}

	if !reflect.DeepEqual(got, want) {
		t.Errorf("decoded config differs\n got: %+v\nwant: %+v", got, want)
	}
	if err := got.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

func TestLoadDoesNotChangeBase(t *testing.T) {
	path := writeFile(t, t.TempDir(), "a.hcl", `tags { zone = "b" }
server { retry_join = ["x:1"] }`)
	base := Default()
	base.Tags["rack"] = "1"
	c := mustLoad(t, base, path)
	if c.Tags["rack"] != "1" || c.Tags["zone"] != "b" {
		t.Errorf("tags = %v, want base tags merged with the file's", c.Tags)
	}
	if _, ok := base.Tags["zone"]; ok || base.Server.RetryJoin != nil {
		t.Errorf("Load modified its base: %+v", base)
	}
}

func TestLoadErrors(t *testing.T) {
	cases := []struct {
		name    string
		content string
		want    []string
	}{{
		name: "unknown attribute in block",
		content: `node_name = "a"
server {
  bootstrap_expekt = 3
}`,
		want: []string{"bad.hcl:3,3:", `"bootstrap_expekt"`, `in block "server"`, `Did you mean "bootstrap_expect"?`},
	}, {
		name:    "unknown top-level attribute",
		content: "\n\ndata_dri = \"/x\"\n",
		want:    []string{"bad.hcl:3,1:", `"data_dri"`, `Did you mean "data_dir"?`},
	}, {
		name:    "unknown block",
		content: "serve {\n}\n",
		want:    []string{"bad.hcl:1,1:", `"serve"`},
	}, {
		name:    "unknown plugin attribute",
		content: "plugin \"exec\" {\n  concurrenc = 2\n}\n",
		want:    []string{"bad.hcl:2,3:", `"concurrenc"`, `plugin.exec`, `"concurrency"`},
	}, {
		name:    "bad duration",
		content: "raft {\n  heartbeat_timeout = \"fast\"\n}\n",
		want:    []string{"bad.hcl:2,23:", `"raft.heartbeat_timeout"`, `"fast"`, `"30s"`},
	}, {
		name:    "duration without unit",
		content: "limits { lease_ttl = 30 }\n",
		want:    []string{"bad.hcl:1,22:", `"limits.lease_ttl"`},
	}, {
		name:    "bad type",
		content: "ports {\n  http = \"eighty\"\n}\n",
		want:    []string{"bad.hcl:2,", `"ports.http"`, "number is required"},
	}, {
		name:    "syntax error",
		content: "node_name = \n",
		want:    []string{"bad.hcl:1,"},
	}, {
		name:    "duplicate block",
		content: "server {}\nserver {}\n",
		want:    []string{"bad.hcl:2,", `duplicate "server" block`, "bad.hcl:1,"},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, t.TempDir(), "bad.hcl", tc.content)
			_, err := Load(nil, path)
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") {
				t.Errorf("error is not one line: %q", msg)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not match ErrInvalid", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(nil, filepath.Join(t.TempDir(), "nope.hcl"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("err = %v, want not-exist", err)
	}
}

func TestLoadDirectoryMergesInOrder(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "10-base.hcl", `
node_name = "base"
data_dir  = "/data"
tags { zone = "a"  rack = "1" }
queue "default" { max_attempts = 5 }
plugin "exec" { concurrency = 3 }
`)
	writeFile(t, dir, "20-override.hcl", `
node_name = "override"
tags { zone = "b" }
queue "default" { retention = "1h" }
plugin "exec" { config { allowed = true } }
`)
	writeFile(t, dir, "notes.txt", `this is not = config {`)
	extra := writeFile(t, t.TempDir(), "last.hcl", `log_level = "warn"`)

	c := mustLoad(t, nil, dir, extra)
	if c.NodeName != "override" || c.DataDir != "/data" || c.LogLevel != "warn" {
		t.Errorf("node/data/log = %q/%q/%q", c.NodeName, c.DataDir, c.LogLevel)
	}
	if !reflect.DeepEqual(c.Tags, map[string]string{"zone": "b", "rack": "1"}) {
		t.Errorf("tags = %v", c.Tags)
	}
	if q := c.Queues["default"]; q != (Queue{MaxAttempts: 5, Retention: time.Hour}) {
		t.Errorf("queue default = %+v", q)
	}
	if p := c.Plugins["exec"]; p.Concurrency != 3 || string(p.Config) != `{"allowed":true}` {
		t.Errorf("plugin exec = %+v (config %s)", p, p.Config)
	}
}

func TestLoadPluginConfigJSON(t *testing.T) {
	path := writeFile(t, t.TempDir(), "p.hcl", `
plugin "http" {
  config {
    timeout  = "5s"
    retries  = 3
    ratio    = 0.5
    verbose  = false
    hosts    = ["a", "b"]
    headers  = { "User-Agent" = "corral", n = 1 }
    nothing  = null
  }
}
plugin "echo" {}
`)
	c := mustLoad(t, nil, path)
	got := string(c.Plugins["http"].Config)
	want := `{"headers":{"User-Agent":"corral","n":1},"hosts":["a","b"],"nothing":null,"ratio":0.5,"retries":3,"timeout":"5s","verbose":false}`
	if got != want {
		t.Errorf("config JSON\n got %s\nwant %s", got, want)
	}
	if c.Plugins["echo"].Config != nil {
		t.Errorf("echo config = %s, want nil for an absent block", c.Plugins["echo"].Config)
	}

	bad := writeFile(t, t.TempDir(), "p.hcl", "plugin \"exec\" {\n  config {\n    x = var.y\n  }\n}\n")
	if _, err := Load(nil, bad); err == nil || !strings.Contains(err.Error(), "p.hcl:3,") ||
		!strings.Contains(err.Error(), "plugin.exec.config.x") {
		t.Errorf("variable in plugin config: err = %v, want p.hcl:3 and the key", err)
	}
}

func TestLoadJSONFile(t *testing.T) {
	path := writeFile(t, t.TempDir(), "c.json", `{"node_name": "j", "server": {"max_voters": 3}}`)
	c := mustLoad(t, nil, path)
	if c.NodeName != "j" || c.Server.MaxVoters != 3 {
		t.Errorf("json config = %+v", c)
	}
}

func TestValidateMessages(t *testing.T) {
	key := func(n int) string { return base64.StdEncoding.EncodeToString(make([]byte, n)) }
	cases := []struct {
		name   string
		mutate func(c *Config)
		want   string
	}{
		{"max voters", func(c *Config) { c.Server.MaxVoters = 0 }, "server.max_voters = 0: must be at least 1"},
		{"port range", func(c *Config) { c.Ports.Raft = 70000 }, "ports.raft = 70000: must be between 1 and 65535"},
		{"port clash", func(c *Config) { c.Ports.Serf = c.Ports.HTTP }, "ports.serf = 4780: already used by ports.http"},
		{"log level", func(c *Config) { c.LogLevel = "loud" }, `log_level = "loud": must be one of trace, debug, info, warn, error`},
		{"bootstrap", func(c *Config) { c.Server.BootstrapExpect = -1 }, "server.bootstrap_expect = -1: must be 0 or more"},
		{"duration", func(c *Config) { c.Server.DeadServerCleanupAfter = 0 }, `server.dead_server_cleanup_after = "0s": must be greater than zero`},
		{"raft lease", func(c *Config) { c.Raft.LeaderLeaseTimeout = 2 * time.Second },
			`raft.leader_lease_timeout = "2s": must not exceed raft.heartbeat_timeout = "1s"`},
		{"commit timeout", func(c *Config) { c.Raft.CommitTimeout = 500 * time.Microsecond },
			`raft.commit_timeout = "500µs": must be at least 1ms`},
		{"short key", func(c *Config) { c.Serf.Encrypt = key(16) }, "serf.encrypt: decodes to 16 bytes, must be 32"},
		{"bad base64", func(c *Config) { c.Serf.Encrypt = "not!base64" }, "serf.encrypt: not valid base64"},
		{"data dir", func(c *Config) { c.DataDir = "" }, `data_dir = "": required`},
		{"bind", func(c *Config) { c.BindAddr = "localhost" }, `bind_addr = "localhost": must be an IP address`},
		{"queue", func(c *Config) { c.Queues["q"] = Queue{MaxAttempts: 0, Retention: time.Hour} }, "queue.q.max_attempts = 0: must be at least 1"},
		{"plugin", func(c *Config) { c.Plugins["p"] = Plugin{Concurrency: 0} }, "plugin.p.concurrency = 0: must be at least 1"},
		{"checksum", func(c *Config) { c.Plugins["p"] = Plugin{Concurrency: 1, Checksum: "abc"} }, `plugin.p.checksum = "abc": must be a hex SHA-256`},
		{"reserved tag", func(c *Config) { c.Tags["role"] = "x" }, `tags.role: "role" is set by the agent itself`},
		{"limits", func(c *Config) { c.Limits.MaxPayloadBytes = 0 }, "limits.max_payload_bytes = 0: must be at least 1"},
		{"lease ttl", func(c *Config) { c.Limits.LeaseTTL = -time.Second }, `limits.lease_ttl = "-1s": must be greater than zero`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			c.DataDir = "/data"
			tc.mutate(c)
			err := c.Validate()
			if err == nil {
				t.Fatal("Validate succeeded")
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %q, want it to contain %q", err, tc.want)
			}
		})
	}

	// The key itself never appears in a message.
	c := Default()
	c.DataDir = "/data"
	c.Serf.Encrypt = key(24)
	if err := c.Validate(); err == nil || strings.Contains(err.Error(), c.Serf.Encrypt) {
		t.Errorf("err = %v, must reject without printing the key", err)
	}
	c.Serf.Encrypt = key(32)
	if err := c.Validate(); err != nil {
		t.Errorf("32-byte key rejected: %v", err)
	}

	// Several problems are reported together.
	c = Default()
	c.Server.MaxVoters = 0
	c.LogLevel = "x"
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "server.max_voters") || !strings.Contains(err.Error(), "log_level") ||
		!strings.Contains(err.Error(), "data_dir") {
		t.Errorf("err = %v, want all three problems", err)
	}
}
