package config

import (
	"strings"
	"testing"
	"time"
)

// designExample is DESIGN §9 verbatim: one-line blocks with several items.
const designExample = `node_name  = "node-1"
data_dir   = "/var/lib/corral"
bind_addr  = "0.0.0.0"
advertise_addr = "10.0.0.5"        # optional
log_level  = "info"
ports { http = 4780  raft = 4781  serf = 4782 }
server {
  bootstrap_expect = 3
  retry_join       = ["10.0.0.6:4782", "10.0.0.7:4782"]
  max_voters       = 5
  dead_server_cleanup_after = "30s"
}
raft { heartbeat_timeout = "1s"  election_timeout = "1s"  snapshot_threshold = 8192 }
serf { encrypt = "base64-32-byte-key" }
tags { zone = "a" }
plugin_dir = "/etc/corral/plugins"
plugin "exec" { concurrency = 8  config { allowed_commands = ["/usr/bin/env"] } }
queue "default" { max_attempts = 25  concurrency = 0  retention = "24h" }
`

func TestLoadDesignExample(t *testing.T) {
	c := mustLoad(t, nil, writeFile(t, t.TempDir(), "corral.hcl", designExample))
	if c.Ports != (Ports{4780, 4781, 4782}) || c.Raft.SnapshotThreshold != 8192 || c.Raft.ElectionTimeout != time.Second {
		t.Errorf("ports/raft = %+v / %+v", c.Ports, c.Raft)
	}
	if p := c.Plugins["exec"]; p.Concurrency != 8 || string(p.Config) != `{"allowed_commands":["/usr/bin/env"]}` {
		t.Errorf("plugin exec = %+v (%s)", p, p.Config)
	}
	if q := c.Queues["default"]; q != (Queue{MaxAttempts: 25, Retention: 24 * time.Hour}) {
		t.Errorf("queue = %+v", q)
	}
	if c.Server.BootstrapExpect != 3 || len(c.Server.RetryJoin) != 2 || c.Tags["zone"] != "a" {
		t.Errorf("server/tags = %+v / %v", c.Server, c.Tags)
	}
}

func TestOneLineBlockErrorsKeepPositions(t *testing.T) {
	cases := []struct{ src, want string }{
		{"ports { http = 1  rafft = 2 }\n", `c.hcl:1,19: unsupported argument in block "ports"`},
		{"ports { http = 1  raft = 2 }\n\nserver { max_voters = \"x\"  min_quorum = 1 }\n", `c.hcl:3,24: unsuitable value type for "server.max_voters"`},
		{"queue \"q\" { retention = \"1x\"  concurrency = 1 }\nnode_nam = \"a\"\n", `c.hcl:1,25: invalid duration for "queue.q.retention"`},
		{"raft { trailing_logs = 1 }\nx = 1\n", `c.hcl:2,1: unsupported argument: An argument named "x"`},
	}
	for _, tc := range cases {
		_, err := Load(nil, writeFile(t, t.TempDir(), "c.hcl", tc.src))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("source %q: err = %v, want %q", tc.src, err, tc.want)
		}
	}
}

func TestRelaxLeavesValidSourceAlone(t *testing.T) {
	for _, src := range []string{
		"ports { http = 1 }\n",
		"a = { x = 1, y = 2 }\n",
		"server {\n  max_voters = 3\n}\n",
		"a = \"${x} { y = 1 z = 2 }\"\n",
		"a = { for k, v in m : k => v }\n",
	} {
		if got := string(relaxOneLineBlocks([]byte(src), "x.hcl")); got != src {
			t.Errorf("relax(%q) = %q, want unchanged", src, got)
		}
	}
}
