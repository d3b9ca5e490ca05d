package main

import (
	"context"
	"time"

	"github.com/corral-dev/corral/daemon/api"
)

// self reads node a's /v1/agent/self.
func (c *client) self(ctx context.Context, a *agent) (api.Self, bool) {
	var s api.Self
	_, ok := c.getJSON(ctx, 2*time.Second, a.httpURL+"/v1/agent/self", &s)
	return s, ok
}

// raftConfig reads node a's view of the raft configuration.
func (c *client) raftConfig(ctx context.Context, a *agent) (api.RaftConfiguration, bool) {
	var rc api.RaftConfiguration
	_, ok := c.getJSON(ctx, 2*time.Second, a.httpURL+"/v1/operator/raft/configuration", &rc)
	return rc, ok
}

// leader returns the index of the only node that says it leads, or -1
// (none, or more than one).
func (c *client) leader(ctx context.Context, agents []*agent) int {
	found := -1
	for i, a := range agents {
		if s, ok := c.self(ctx, a); ok && s.State == "leader" {
			if found >= 0 {
				return -1
			}
			found = i
		}
	}
	return found
}
