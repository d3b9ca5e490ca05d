package httpapi

import (
	"cmp"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/corral-dev/corral/daemon/api"
	"github.com/corral-dev/corral/queue"
)

// Ahead counts the queued jobs that would go before a new job
// (queue.Store.QueuedAhead): those of its queue with the same or a higher
// priority, and of them those of its plugin.
type Ahead interface {
	QueuedAhead(queue, plugin string, priority int) (all, samePlugin int)
}

// handlePlan serves POST /v1/jobs/plan: the body of a single submit, and
// the answer says which nodes could run the job now and what holds it
// back, without writing anything. It needs what the submit would need
// (queue:write on the job's queue).
func (h *API) handlePlan(w http.ResponseWriter, r *http.Request) {
	authz, ok := h.authenticate(w, r, "queue:write on the job's queue")
	if !ok {
		return
	}
	var body submitBody
	if err := decodeBody(w, r, int64(h.cfg.MaxRequestBytes), &body); err != nil {
		writeError(w, err)
		return
	}
	if body.Jobs != nil {
		writeError(w, badRequest("job plan takes one job (the body of a single submit), not {\"jobs\": [...]}: plan them one at a time"))
		return
	}
	now := time.Now().UTC()
	spec, err := specFromRequest(&body.JobRequest, now)
	if err == nil {
		err = h.checkSpec(&spec)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	if !h.check(w, authz, permQueueWrite(queueOf(spec.Queue))) {
		return
	}
	out := h.plan(&spec, now)
	writeJSON(w, http.StatusOK, out, out.Index)
}

// plan works out what would happen to spec if it were submitted at now.
func (h *API) plan(spec *queue.Spec, now time.Time) api.Plan {
	qname := queueOf(spec.Queue)
	out := api.Plan{Queue: qname, Plugin: spec.Plugin, Index: h.store.Index(), Nodes: []api.PlanNode{}}
	if spec.RunAt.After(now) {
		out.RunAt = spec.RunAt
		out.Reasons = append(out.Reasons, fmt.Sprintf("the job is delayed until %s (in %s)", spec.RunAt.Format(time.RFC3339), roundWait(spec.RunAt.Sub(now))))
	}
	out.Ahead, out.AheadSamePlugin = h.store.QueuedAhead(qname, spec.Plugin, spec.Priority)
	if q, ok := h.queueInfo(qname); ok {
		out.Reasons = append(out.Reasons, queueReasons(q, out.Ahead, now)...)
	}

	nodes := h.cluster.Nodes()
	slices.SortFunc(nodes, func(a, b Node) int { return cmp.Compare(a.Name, b.Name) })
	withPlugin, eligible := 0, 0
	for _, n := range nodes {
		pn := api.PlanNode{Node: n.Name}
		switch {
		case !slices.Contains(n.Plugins, spec.Plugin):
			has := "no plugins"
			if len(n.Plugins) > 0 {
				has = "it has " + strings.Join(slices.Sorted(slices.Values(n.Plugins)), ", ")
			}
			pn.Reason = fmt.Sprintf("plugin %q is not installed (%s)", spec.Plugin, has)
		default:
			withPlugin++
			pn.Reason = unmetConstraints(n.Tags, spec.Constraints)
		}
		if pn.Reason == "" {
			pn.Eligible = true
			eligible++
		}
		out.Nodes = append(out.Nodes, pn)
	}
	for _, m := range h.cluster.Members() {
		if m.Status != "alive" && !slices.ContainsFunc(nodes, func(n Node) bool { return n.Name == m.Name }) {
			out.Nodes = append(out.Nodes, api.PlanNode{Node: m.Name, Reason: "node is " + m.Status})
		}
	}
	switch {
	case withPlugin == 0:
		out.Warnings = append(out.Warnings, fmt.Sprintf("no node has plugin %q: the job would wait until a node with it joins (see corral plugin list)", spec.Plugin))
	case eligible == 0:
		out.Warnings = append(out.Warnings, fmt.Sprintf("no node with plugin %q matches the constraints %s", spec.Plugin, formatTags(spec.Constraints)))
	}
	out.RunnableNow = eligible > 0 && len(out.Reasons) == 0
	return out
}

// queueReasons says what in the queue holds a new job back at now, given
// the queued jobs ahead of it (they take the queue's rate-limit tokens
// first, whatever their plugin).
func queueReasons(q queue.QueueInfo, ahead int, now time.Time) []string {
	var out []string
	if q.Config.Paused {
		out = append(out, fmt.Sprintf("queue %q is paused (corral queue resume %s)", q.Name, q.Name))
	}
	if c := q.Config.Concurrency; c > 0 && q.Counts[queue.StateRunning] >= c {
		out = append(out, fmt.Sprintf("queue %q is at its concurrency limit of %d (%d running)", q.Name, c, q.Counts[queue.StateRunning]))
	}
	if why := rateLimited(q, now); why != "" {
		out = append(out, why)
	} else if q.Rate != nil && ahead >= int(q.Rate.Tokens(now)) {
		// Tokens there are, but the jobs ahead take them first.
		wait := time.Duration(int64(ahead+1-int(q.Rate.Tokens(now))) * int64(q.Rate.Per) / q.Rate.Count)
		out = append(out, fmt.Sprintf("queue %q is rate limited (%s, burst %d): the %d jobs ahead use its tokens; a token for this one in about %s", q.Name, q.Rate, q.Rate.Burst, ahead, roundWait(wait)))
	}
	return out
}

// unmetConstraints names every constraint the tags do not meet ("" when
// all are met).
func unmetConstraints(tags, constraints map[string]string) string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(constraints)) {
		want := constraints[k]
		switch have, ok := tags[k]; {
		case !ok:
			out = append(out, fmt.Sprintf("constraint %s=%s: node has no tag %q", k, want, k))
		case have != want:
			out = append(out, fmt.Sprintf("constraint %s=%s: node has %s=%s", k, want, k, have))
		}
	}
	return strings.Join(out, "; ")
}
