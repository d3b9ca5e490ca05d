package raftnode

import (
	"testing"
	"time"

	"github.com/corral-dev/corral/daemon/config"
	"github.com/hashicorp/go-hclog"
)

// The raft block of the config reaches raft, commit_timeout included (it
// sets how soon followers see fresh commits), and the default is 15ms,
// not raft's own 50ms.
func TestRaftConfigTakesTheConfiguredTimings(t *testing.T) {
	cfg := config.Default()
	if rc := raftConfig(cfg.Raft, "id", hclog.NewNullLogger()); rc.CommitTimeout != 15*time.Millisecond {
		t.Fatalf("default commit timeout %s, want 15ms", rc.CommitTimeout)
	}
	cfg.Raft.CommitTimeout = 5 * time.Millisecond
	cfg.Raft.HeartbeatTimeout = 2 * time.Second
	rc := raftConfig(cfg.Raft, "id", hclog.NewNullLogger())
	if rc.CommitTimeout != 5*time.Millisecond || rc.HeartbeatTimeout != 2*time.Second {
		t.Fatalf("commit timeout %s, heartbeat %s; want 5ms and 2s", rc.CommitTimeout, rc.HeartbeatTimeout)
	}
}
