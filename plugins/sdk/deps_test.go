package sdk_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestPluginDependencies checks with `go list -deps` that a plugin built on
// the SDK (the upper example) and the sdktest harness pull in nothing of
// the daemon: only the plugin protocol, the SDK and their libraries
// (go-plugin, gRPC, protobuf, hclog).
func TestPluginDependencies(t *testing.T) {
	const module = "github.com/corral-dev/corral/"
	allowed := []string{"plugins/sdk", "plugins/proto", "plugins/runners", "plugins/internal/automtls", "plugins/examples/upper"}
	// Libraries only the daemon needs; none may reach a plugin binary.
	forbidden := []string{
		"github.com/hashicorp/raft", "github.com/hashicorp/serf", "github.com/hashicorp/memberlist",
		"github.com/hashicorp/hcl", "go.etcd.io/bbolt", "github.com/prometheus/", "github.com/hashicorp/cli",
		"github.com/google/btree", "github.com/hashicorp/go-metrics",
	}
	for _, pkg := range []string{"../examples/upper", "./sdktest"} {
		out, err := exec.Command("go", "list", "-deps", pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		for _, dep := range strings.Fields(string(out)) {
			if rest, ok := strings.CutPrefix(dep, module); ok {
				if !hasAnyPrefix(rest, allowed) {
					t.Errorf("%s depends on %s, which is not part of the plugin SDK", pkg, dep)
				}
				continue
			}
			if hasAnyPrefix(dep, forbidden) {
				t.Errorf("%s depends on %s, a daemon library", pkg, dep)
			}
		}
	}
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if s == p || strings.HasPrefix(s, strings.TrimSuffix(p, "/")+"/") || (strings.HasSuffix(p, "/") && strings.HasPrefix(s, p)) {
			return true
		}
	}
	return false
}
