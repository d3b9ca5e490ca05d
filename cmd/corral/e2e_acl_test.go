package main_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestACLThroughCLI drives ACLs end to end with the real binary: an agent
// without -dev (ACLs on by default), `acl bootstrap`, a policy that
// allows queue "a", a token with it; the token submits to "a", gets 403
// in "b"; a wrong token and no token get 401; a deleted token stops
// working; a second bootstrap is refused.
func TestACLThroughCLI(t *testing.T) {
	c := newCluster(t, 1, clusterOpts{bootstrapExpect: 1, cleanupAfter: 30 * time.Second, acl: true})
	nd := c.nodes[0]
	addr := nd.url()

	var root struct {
		SecretID   string `json:"secret_id"`
		Management bool   `json:"management"`
	}
	eventually(t, 20*time.Second, "acl bootstrap succeeds (a leader exists)", func() bool {
		out, _, code := cli(t, addr, "acl", "bootstrap", "-json")
		return code == 0 && json.Unmarshal([]byte(out), &root) == nil
	})
	if root.SecretID == "" || !root.Management {
		t.Fatalf("bootstrap token %+v", root)
	}
	if _, stderr, code := cli(t, addr, "acl", "bootstrap"); code != 1 || !strings.Contains(stderr, "already") {
		t.Fatalf("second bootstrap: exit %d, %q", code, stderr)
	}

	rules := filepath.Join(t.TempDir(), "team-a.hcl")
	if err := os.WriteFile(rules, []byte("queue \"a\" {\n  policy = \"write\"\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, stderr, code := cli(t, addr, "acl", "policy", "apply", "-token", root.SecretID, "team-a", rules); code != 0 {
		t.Fatalf("policy apply: exit %d %s %s", code, out, stderr)
	}
	if out, _, code := cli(t, addr, "acl", "policy", "list", "-token", root.SecretID); code != 0 || !strings.Contains(out, "team-a") {
		t.Fatalf("policy list: exit %d %q", code, out)
	}
	var tok struct {
		AccessorID string `json:"accessor_id"`
		SecretID   string `json:"secret_id"`
	}
	out, stderr, code := cli(t, addr, "acl", "token", "create", "-token", root.SecretID, "-policy", "team-a", "-description", "ci", "-json")
	if code != 0 || json.Unmarshal([]byte(out), &tok) != nil || tok.SecretID == "" {
		t.Fatalf("token create: exit %d %q %q", code, out, stderr)
	}
	if out, _, code := cli(t, addr, "acl", "token", "list", "-token", root.SecretID); code != 0 || !strings.Contains(out, tok.AccessorID) || strings.Contains(out, tok.SecretID) {
		t.Fatalf("token list: exit %d %q (want the accessor, never the secret)", code, out)
	}

	// Allowed in queue a.
	if out, stderr, code := cli(t, addr, "job", "submit", "-token", tok.SecretID, "-queue", "a", "-wait", "echo", `{"echo":"ok"}`); code != 0 {
		t.Fatalf("submit to a: exit %d %q %q", code, out, stderr)
	}
	// 403 in queue b, naming the permission.
	if _, stderr, code := cli(t, addr, "job", "submit", "-token", tok.SecretID, "-queue", "b", "echo", "{}"); code != 1 ||
		!strings.Contains(stderr, "permission denied") || !strings.Contains(stderr, `queue:write on "b"`) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
		t.Fatalf("submit to b: exit %d %q, want one line: permission denied ... queue:write on \"b\"", code, stderr)
	}
	// The token cannot make the agent leave or manage ACLs.
	if _, stderr, code := cli(t, addr, "leave", "-token", tok.SecretID); code != 1 || !strings.Contains(stderr, "agent:write") {
		t.Fatalf("leave with a queue token: exit %d %q", code, stderr)
	}
	// A wrong token and no token: 401.
	if _, stderr, code := cli(t, addr, "job", "submit", "-token", "wrong-token", "-queue", "a", "echo", "{}"); code != 1 || !strings.Contains(stderr, "ACL token not found") {
		t.Fatalf("wrong token: exit %d %q", code, stderr)
	}
	if _, stderr, code := cli(t, addr, "job", "list"); code != 1 || !strings.Contains(stderr, "ACL token missing") {
		t.Fatalf("no token: exit %d %q", code, stderr)
	}
	// The token lists only what it may read.
	if out, _, code := cli(t, addr, "job", "list", "-token", tok.SecretID, "-queue", "a"); code != 0 || !strings.Contains(out, "succeeded") {
		t.Fatalf("job list in a: exit %d %q", code, out)
	}
	inB := submitID(t, addr, "-token", root.SecretID, "-queue", "b", "no-such-plugin", "{}")
	if out, stderr, code := cli(t, addr, "job", "list", "-token", tok.SecretID); code != 0 || !strings.Contains(out, "succeeded") || strings.Contains(out, inB) {
		t.Fatalf("job list with a queue-a token: exit %d %q %q, want the job in a and not %s in b", code, out, stderr, inB)
	}
	// A deleted token stops working.
	if _, stderr, code := cli(t, addr, "acl", "token", "delete", "-token", root.SecretID, tok.AccessorID); code != 0 {
		t.Fatalf("token delete: exit %d %q", code, stderr)
	}
	if _, stderr, code := cli(t, addr, "job", "submit", "-token", tok.SecretID, "-queue", "a", "echo", "{}"); code != 1 || !strings.Contains(stderr, "ACL token not found") {
		t.Fatalf("deleted token: exit %d %q", code, stderr)
	}
	// CORRAL_TOKEN works like -token.
	t.Setenv("CORRAL_TOKEN", root.SecretID)
	if _, stderr, code := cli(t, addr, "queue", "list"); code != 0 {
		t.Fatalf("queue list with CORRAL_TOKEN: exit %d %q", code, stderr)
	}
}
