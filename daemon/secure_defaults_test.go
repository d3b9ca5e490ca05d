package daemon_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/corral-dev/corral/daemon/api"
	"github.com/corral-dev/corral/daemon/testcluster"
	"github.com/corral-dev/corral/queue"
	"github.com/hashicorp/raft"
)

// TestDefaultsBlockAttacks replays issue 11's API attacks against a
// cluster with nothing but the defaults (no TLS, no acl block): an
// unauthenticated exec job, leave and peer removal are refused with 401
// and change nothing; the exec plugin is not even loaded; the oversized
// fields are refused even for a management token.
func TestDefaultsBlockAttacks(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Nodes: 3, Builtins: true, SecureDefaults: true})
	leader := c.Leader()
	var follower *testcluster.Node
	for _, n := range c.Nodes {
		if n != leader {
			follower = n
			break
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	anon := leader.Client // no token

	// Unauthenticated exec: 401, no job.
	_, err := anon.Submit(ctx, api.JobRequest{Plugin: "exec", Payload: []byte(`{"command":["sh","-c","id; head -2 /etc/shadow"]}`)})
	assertStatus(t, "unauthenticated exec", err, http.StatusUnauthorized, "queue:write", "token")
	// The same through a raw request with a made-up bearer token: 401.
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+leader.Agent.HTTPAddr()+"/v1/jobs",
		strings.NewReader(`{"plugin":"exec","payload":{"command":["id"]}}`))
	req.Header.Set("Authorization", "Bearer 00000000-0000-0000-0000-000000000000")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), "not found") {
		t.Fatalf("unknown bearer token: %d %s, want 401", resp.StatusCode, body)
	}
	if n := len(leader.Agent.Store().List(queue.Filter{})); n != 0 {
		t.Fatalf("%d jobs after refused submits", n)
	}

	// Unauthenticated peer removal and leave: 401, the cluster keeps its
	// three voters and the follower keeps running.
	assertStatus(t, "unauthenticated remove-peer", anon.RemovePeer(ctx, follower.Agent.NodeID()), http.StatusUnauthorized, "operator:write")
	assertStatus(t, "unauthenticated leave", follower.Client.Leave(ctx), http.StatusUnauthorized, "agent:write")
	select {
	case <-follower.Agent.ShutdownCh():
		t.Fatalf("follower shut down after an unauthenticated leave")
	default:
	}
	if got := voters(t, leader); got != 3 {
		t.Fatalf("%d voters after refused removals, want 3", got)
	}

	// Bootstrap once; a second bootstrap is refused.
	root, err := anon.ACLBootstrap(ctx)
	if err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	if _, err := follower.Client.ACLBootstrap(ctx); err == nil {
		t.Fatalf("second bootstrap accepted")
	} else {
		assertStatus(t, "second bootstrap", err, http.StatusConflict, "bootstrap")
	}
	mgmt, err := api.NewClient("http://"+leader.Agent.HTTPAddr(), root.SecretID)
	if err != nil {
		t.Fatal(err)
	}

	// Exec is off by default: the plugin is not loaded on any node.
	pl, err := mgmt.Plugins(ctx)
	if err != nil {
		t.Fatalf("plugins: %v", err)
	}
	for _, p := range pl.Plugins {
		if p.Name == "exec" {
			t.Fatalf("exec plugin loaded without plugin \"exec\" { enabled = true }")
		}
	}

	// Oversized and malformed fields are refused even for management.
	checkRefused(t, ctx, &testcluster.Node{Name: leader.Name, Agent: leader.Agent, Client: mgmt})
}

// voters counts the voters in n's raft configuration.
func voters(t *testing.T, n *testcluster.Node) int {
	t.Helper()
	f := n.Agent.Raft().GetConfiguration()
	if err := f.Error(); err != nil {
		t.Fatal(err)
	}
	v := 0
	for _, s := range f.Configuration().Servers {
		if s.Suffrage == raft.Voter {
			v++
		}
	}
	return v
}
