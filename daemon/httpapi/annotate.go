package httpapi

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/corral-dev/corral/daemon/api"
	"github.com/corral-dev/corral/queue"
)

// annotate adds what only the live cluster knows to a job: why a queued
// job is waiting, or a running job's last progress.
func (h *API) annotate(ctx context.Context, j *queue.Job, out *api.Job) {
	switch j.State {
	case queue.StateQueued:
		out.Waiting = h.waitingReason(j)
	case queue.StateBlocked:
		out.Waiting = h.blockedReason(j)
	case queue.StateRunning:
		out.Progress = h.jobs.Progress(ctx, j.Node, j.ID)
	}
}

// waitingReason explains a queued job that no node can take.
func (h *API) waitingReason(j *queue.Job) string {
	if q, ok := h.queueInfo(j.Queue); ok {
		if q.Config.Paused {
			return fmt.Sprintf("queue %q is paused (corral queue resume %s)", j.Queue, j.Queue)
		}
		if c := q.Config.Concurrency; c > 0 && q.Counts[queue.StateRunning] >= c {
			return fmt.Sprintf("queue %q is at its concurrency limit of %d", j.Queue, c)
		}
		if why := rateLimited(q, time.Now()); why != "" {
			return why
		}
	}
	withPlugin := 0
	for _, n := range h.cluster.Nodes() {
		if !slices.Contains(n.Plugins, j.Plugin) {
			continue
		}
		withPlugin++
		if matches(n.Tags, j.Constraints) {
			return ""
		}
	}
	if withPlugin == 0 {
		return fmt.Sprintf("no node has plugin %q (see corral plugin list)", j.Plugin)
	}
	return fmt.Sprintf("no node with plugin %q matches the constraints %s", j.Plugin, formatTags(j.Constraints))
}

func matches(tags, constraints map[string]string) bool {
	for k, v := range constraints {
		if tags[k] != v {
			return false
		}
	}
	return true
}

func formatTags(m map[string]string) string {
	parts := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, k+"="+m[k])
	}
	return strings.Join(parts, ",")
}
