package raftnode

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/corral-dev/corral/queue"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// offlineRaft is a node's raft stores on disk, opened without running raft.
type offlineRaft struct {
	dir   string
	rc    *raft.Config
	store *raftboltdb.BoltStore
	snaps raft.SnapshotStore
	trans raft.Transport
}

func mustOpenOffline(t *testing.T, id string) *offlineRaft {
	t.Helper()
	dir := t.TempDir()
	store, err := raftboltdb.NewBoltStore(filepath.Join(dir, "raft.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, 2, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	_, trans := raft.NewInmemTransport(raft.ServerAddress(id + ":4781"))
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(id)
	rc.Logger = hclog.NewNullLogger()
	return &offlineRaft{dir: dir, rc: rc, store: store, snaps: snaps, trans: trans}
}

func (o *offlineRaft) configuration(t *testing.T) raft.Configuration {
	t.Helper()
	conf, err := raft.GetConfiguration(o.rc, &FSM{Store: queue.New()}, o.store, o.store, o.snaps, o.trans)
	if err != nil {
		t.Fatal(err)
	}
	return conf
}

func (o *offlineRaft) recover() error {
	return recoverPeers(o.dir, o.rc, o.store, o.store, o.snaps, o.trans, hclog.NewNullLogger())
}

func threeVoters() raft.Configuration {
	var c raft.Configuration
	for _, id := range []string{"a", "b", "c"} {
		c.Servers = append(c.Servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(id), Address: raft.ServerAddress(id + ":4781")})
	}
	return c
}

func TestRecoverPeersReplacesConfiguration(t *testing.T) {
	o := mustOpenOffline(t, "a")
	if err := raft.BootstrapCluster(o.rc, o.store, o.store, o.snaps, o.trans, threeVoters()); err != nil {
		t.Fatal(err)
	}
	// Without peers.json nothing changes.
	if err := o.recover(); err != nil {
		t.Fatal(err)
	}
	if got := len(o.configuration(t).Servers); got != 3 {
		t.Fatalf("configuration changed without peers.json: %d servers", got)
	}

	path := filepath.Join(o.dir, peersFile)
	peers := `[{"id": "a", "address": "10.0.0.1:4781", "non_voter": false}, {"id": "d", "address": "10.0.0.4:4781", "non_voter": true}]`
	if err := os.WriteFile(path, []byte(peers), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := o.recover(); err != nil {
		t.Fatal(err)
	}
	conf := o.configuration(t)
	want := []raft.Server{
		{Suffrage: raft.Voter, ID: "a", Address: "10.0.0.1:4781"},
		{Suffrage: raft.Nonvoter, ID: "d", Address: "10.0.0.4:4781"},
	}
	if len(conf.Servers) != len(want) {
		t.Fatalf("recovered configuration %+v, want %+v", conf.Servers, want)
	}
	for i := range want {
		if conf.Servers[i] != want[i] {
			t.Fatalf("recovered configuration %+v, want %+v", conf.Servers, want)
		}
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("peers.json still there after recovery: %v", err)
	}
}

func TestRecoverPeersRejectsBadFiles(t *testing.T) {
	for name, peers := range map[string]string{
		"not listing this node": `[{"id": "b", "address": "b:4781", "non_voter": false}]`,
		"malformed":             `[{"id": "a", "address": `,
		"missing address":       `[{"id": "a"}]`,
	} {
		t.Run(name, func(t *testing.T) {
			o := mustOpenOffline(t, "a")
			if err := raft.BootstrapCluster(o.rc, o.store, o.store, o.snaps, o.trans, threeVoters()); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(o.dir, peersFile)
			if err := os.WriteFile(path, []byte(peers), 0o600); err != nil {
				t.Fatal(err)
			}
			err := o.recover()
			if err == nil || !strings.Contains(err.Error(), "peers recovery") {
				t.Fatalf("recover with %s: error %v", name, err)
			}
			if got := len(o.configuration(t).Servers); got != 3 {
				t.Fatalf("a rejected peers.json changed the configuration: %d servers", got)
			}
			if _, err := os.Stat(path); err != nil {
				t.Fatalf("a rejected peers.json was removed: %v", err)
			}
		})
	}
}
