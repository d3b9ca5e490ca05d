package httpapi

import (
	"fmt"

	"github.com/corral-dev/corral/daemon/api"
)

// pluginWarnings names the plugins of reqs that no alive node has: such a
// job is accepted (a node with the plugin may join later) but waits until
// one does, which the submitter should hear about at once.
func (h *API) pluginWarnings(reqs []api.JobRequest) []string {
	have := map[string]bool{}
	for _, n := range h.cluster.Nodes() {
		for _, p := range n.Plugins {
			have[p] = true
		}
	}
	var out []string
	warned := map[string]bool{}
	for _, r := range reqs {
		if have[r.Plugin] || warned[r.Plugin] {
			continue
		}
		warned[r.Plugin] = true
		out = append(out, fmt.Sprintf("no node has plugin %q: the job waits until a node with it joins (see corral plugin list)", r.Plugin))
	}
	return out
}
