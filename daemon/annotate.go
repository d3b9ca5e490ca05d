package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/corral-dev/corral/daemon/api"
	"github.com/corral-dev/corral/queue"
)

const (
	// progressTimeout bounds the call to the node running a job.
	progressTimeout = 500 * time.Millisecond
	// progressMinAge is how long an attempt must have run before another
	// node asks its node for progress. Short jobs (most of them) finish
	// before reporting any, and every blocking read that saw them start
	// paid a node-to-node call for nothing.
	progressMinAge = 250 * time.Millisecond
)

// annotate adds what only the live cluster knows to a job: why a queued
// job is waiting, or a running job's last progress.
func (a *Agent) annotate(ctx context.Context, j *queue.Job, out *api.Job) {
	switch j.State {
	case queue.StateQueued:
		out.Waiting = a.waitingReason(j)
	case queue.StateRunning:
		out.Progress = a.progressOf(ctx, j)
	}
}

// waitingReason explains a queued job that no node can take.
func (a *Agent) waitingReason(j *queue.Job) string {
	for _, q := range a.store.Queues() {
		if q.Name != j.Queue {
			continue
		}
		if q.Config.Paused {
			return fmt.Sprintf("queue %q is paused (corral queue resume %s)", j.Queue, j.Queue)
		}
		if c := q.Config.Concurrency; c > 0 && q.Counts[queue.StateRunning] >= c {
			return fmt.Sprintf("queue %q is at its concurrency limit of %d", j.Queue, c)
		}
	}
	nodes := a.nodesView()
	withPlugin := 0
	for _, n := range nodes {
		if !slices.Contains(n.plugins, j.Plugin) {
			continue
		}
		withPlugin++
		if matches(n.tags, j.Constraints) {
			return ""
		}
	}
	if withPlugin == 0 {
		return fmt.Sprintf("no node has plugin %q (see corral plugin list)", j.Plugin)
	}
	return fmt.Sprintf("no node with plugin %q matches the constraints %s", j.Plugin, formatTags(j.Constraints))
}

// nodeView is what the waiting reason needs to know about a node.
type nodeView struct {
	plugins []string
	tags    map[string]string
}

// nodesView lists alive nodes with their plugins and tags: gossip members
// when discovery runs, else just this node.
func (a *Agent) nodesView() []nodeView {
	var out []nodeView
	for _, m := range a.members() {
		if m.Status != "alive" {
			continue
		}
		var ps []string
		if s := m.Tags["plugins"]; s != "" {
			ps = strings.Split(s, ",")
		}
		out = append(out, nodeView{plugins: ps, tags: m.Tags})
	}
	if len(out) == 0 {
		out = append(out, nodeView{plugins: a.localPluginNames(), tags: a.cfg.Tags})
	}
	return out
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
	for _, k := range sortedKeys(m) {
		parts = append(parts, k+"="+m[k])
	}
	return strings.Join(parts, ",")
}

// progressOf asks the node running j for its progress (locally when that
// is this node).
func (a *Agent) progressOf(ctx context.Context, j *queue.Job) *api.Progress {
	if j.Node == a.cfg.NodeName {
		return a.localProgress(j.ID)
	}
	if n := len(j.Attempts); n > 0 && time.Since(j.Attempts[n-1].Started) < progressMinAge {
		return nil
	}
	addr, ok := a.httpAddrOfNode(j.Node)
	if !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, progressTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/v1/internal/progress/"+j.ID, nil)
	if err != nil {
		return nil
	}
	resp, err := forwardClient.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil
	}
	var p api.Progress
	if json.NewDecoder(resp.Body).Decode(&p) != nil {
		return nil
	}
	return &p
}

// localProgress returns the progress of a job running on this node.
func (a *Agent) localProgress(id string) *api.Progress {
	if a.dispatcher == nil {
		return nil
	}
	pct, msg, ok := a.dispatcher.progressOf(id)
	if !ok {
		return nil
	}
	return &api.Progress{Percent: pct, Message: msg}
}

// handleProgress serves GET /v1/internal/progress/{id} for jobs running here.
func (a *Agent) handleProgress(w http.ResponseWriter, r *http.Request) {
	p := a.localProgress(r.PathValue("id"))
	if p == nil {
		writeError(w, &httpError{code: http.StatusNotFound, err: fmt.Errorf("no progress for job %s on this node", r.PathValue("id"))})
		return
	}
	writeJSON(w, http.StatusOK, p, 0)
}
