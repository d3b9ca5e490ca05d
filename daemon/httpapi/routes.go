package httpapi

import (
	"fmt"
	"net/http"
	"net/http/pprof"
	"strconv"
	"time"

	"github.com/corral-dev/corral/daemon/api"
	"github.com/corral-dev/corral/queue"
)

// Handler returns the /v1 router.
func (h *API) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/jobs", h.handleSubmit)
	mux.HandleFunc("GET /v1/jobs", h.replayed(h.handleListJobs))
	mux.HandleFunc("GET /v1/jobs/{id}", h.replayed(h.handleGetJob))
	mux.HandleFunc("DELETE /v1/jobs/{id}", h.handleCancel)
	mux.HandleFunc("POST /v1/jobs/{id}/retry", h.handleRetry)
	mux.HandleFunc("POST /v1/jobs/retry", h.handleBulk(queue.KindBulkRetry))
	mux.HandleFunc("POST /v1/jobs/cancel", h.handleBulk(queue.KindBulkCancel))
	mux.HandleFunc("GET /v1/jobs/{id}/logs", h.replayed(h.handleLogs))
	mux.HandleFunc("GET /v1/queues", h.replayed(h.handleQueues))
	mux.HandleFunc("POST /v1/queues/{name}/pause", h.need(permOperatorWrite, h.handlePause(true)))
	mux.HandleFunc("POST /v1/queues/{name}/resume", h.need(permOperatorWrite, h.handlePause(false)))
	mux.HandleFunc("PUT /v1/queues/{name}/rate", h.need(permOperatorWrite, h.handleQueueRate))
	mux.HandleFunc("POST /v1/jobs/plan", h.replayed(h.handlePlan))
	mux.HandleFunc("DELETE /v1/queues/{name}", h.need(permOperatorWrite, h.handleDeleteQueue))
	mux.HandleFunc("GET /v1/periodic", h.need(permOperatorRead, h.replayed(h.handleListPeriodic)))
	mux.HandleFunc("PUT /v1/periodic/{name}", h.need(permOperatorWrite, h.handleApplyPeriodic))
	mux.HandleFunc("DELETE /v1/periodic/{name}", h.need(permOperatorWrite, h.handleDeletePeriodic))
	mux.HandleFunc("POST /v1/periodic/{name}/run", h.need(permOperatorWrite, h.handleRunPeriodic))
	mux.HandleFunc("GET /v1/operator/raft/configuration", h.need(permOperatorRead, h.handleRaftConfiguration))
	mux.HandleFunc("DELETE /v1/operator/raft/peer", h.need(permOperatorWrite, h.handleRemovePeer))
	// Like Consul's, the leader's address is public: clients find the
	// cluster with it before they have a token.
	mux.HandleFunc("GET /v1/status/leader", h.handleLeader)
	mux.HandleFunc("GET /v1/agent/self", h.need(permAgentRead, h.handleSelf))
	mux.HandleFunc("PUT /v1/agent/leave", h.need(permAgentWrite, h.handleLeave))
	mux.HandleFunc("GET /v1/members", h.need(permAgentRead, h.handleMembers))
	mux.HandleFunc("GET /v1/plugins", h.need(permAgentRead, h.handlePlugins))
	mux.HandleFunc("POST /v1/acl/bootstrap", h.handleACLBootstrap)
	mux.HandleFunc("GET /v1/acl/policies", h.needACL(h.handleACLPolicies))
	mux.HandleFunc("PUT /v1/acl/policy/{name}", h.needACL(h.handleACLPolicyApply))
	mux.HandleFunc("DELETE /v1/acl/policy/{name}", h.needACL(h.handleACLPolicyDelete))
	mux.HandleFunc("GET /v1/acl/tokens", h.needACL(h.handleACLTokens))
	mux.HandleFunc("POST /v1/acl/token", h.needACL(h.handleACLTokenCreate))
	mux.HandleFunc("DELETE /v1/acl/token/{accessor}", h.needACL(h.handleACLTokenDelete))
	if h.cfg.Snapshots != nil {
		mux.HandleFunc("GET /v1/operator/snapshot", h.need(permOperatorWrite, h.onLeader(h.handleSnapshotSave)))
		mux.HandleFunc("PUT /v1/operator/snapshot", h.need(permOperatorWrite, h.onLeader(h.handleSnapshotRestore)))
	}
	if h.cfg.Reloader != nil {
		mux.HandleFunc("PUT /v1/agent/reload", h.need(permAgentWrite, h.handleReload))
	}
	if h.cfg.Metrics != nil {
		// Metrics reveal the cluster's shape and load: agent:read, as
		// Consul's /v1/agent/metrics. Prometheus sends a bearer token.
		mux.HandleFunc("GET /v1/metrics", h.need(permAgentRead, h.cfg.Metrics.ServeHTTP))
	}
	mux.Handle("GET /ui/", uiHandler())
	mux.HandleFunc("GET /ui", redirectToUI)
	mux.HandleFunc("GET /{$}", redirectToUI)
	if h.cfg.EnableDebug {
		mux.HandleFunc("GET /debug/pprof/", h.need(permAgentWrite, pprof.Index))
		mux.HandleFunc("GET /debug/pprof/cmdline", h.need(permAgentWrite, pprof.Cmdline))
		mux.HandleFunc("GET /debug/pprof/profile", h.need(permAgentWrite, pprof.Profile))
		mux.HandleFunc("GET /debug/pprof/symbol", h.need(permAgentWrite, pprof.Symbol))
		mux.HandleFunc("GET /debug/pprof/trace", h.need(permAgentWrite, pprof.Trace))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &httpError{code: http.StatusNotFound, err: fmt.Errorf("no such endpoint: %s %s (see the API section of the README)", r.Method, r.URL.Path)})
	})
	return h.stalenessHeaders(mux)
}

// replayLimit bounds how long a read waits for the replica after a restart.
const replayLimit = 10 * time.Second

// replayed wraps a read handler: until the node has applied everything
// that was in its raft log at start, reads wait (then answer 503), so a
// restarted node never answers "not found" for a job it simply has not
// replayed yet.
func (h *API) replayed(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		deadline := time.Now().Add(replayLimit)
		for {
			ok, applied, target := h.cluster.Replayed()
			if ok {
				break
			}
			if time.Now().After(deadline) || r.Context().Err() != nil {
				writeError(w, &httpError{code: http.StatusServiceUnavailable,
					err: fmt.Errorf("node is still replaying its raft log (applied %d of %d); retry shortly", applied, target)})
				return
			}
			// Raft applies entries that never reach the FSM (no-ops,
			// configuration changes), so the applied index is polled.
			time.Sleep(20 * time.Millisecond)
		}
		next(w, r)
	}
}

// stalenessHeaders notes on every read how fresh this node's state is
// (Consul's X-Consul-KnownLeader / X-Consul-LastContact): whether it knows
// a leader, and how long ago it last heard from it (0 on the leader).
func (h *API) stalenessHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			known, contact := h.cluster.Staleness()
			w.Header().Set(headerKnownLeader, strconv.FormatBool(known))
			w.Header().Set(headerLastContact, strconv.FormatInt(contact.Milliseconds(), 10))
		}
		next.ServeHTTP(w, r)
	})
}

// handleRaftConfiguration serves GET /v1/operator/raft/configuration.
func (h *API) handleRaftConfiguration(w http.ResponseWriter, r *http.Request) {
	out, err := h.cluster.RaftConfiguration()
	if err != nil {
		writeError(w, fmt.Errorf("read raft configuration: %w", err))
		return
	}
	writeJSON(w, http.StatusOK, out, out.Index)
}

// handleRemovePeer serves DELETE /v1/operator/raft/peer?id=.
func (h *API) handleRemovePeer(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("id")
	if id == "" {
		writeError(w, badRequest("missing ?id=: give the server ID shown by `corral operator raft list-peers`"))
		return
	}
	if err := h.cluster.RemovePeer(r.Context(), id); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"removed": id}, 0)
}

// handleLeader serves GET /v1/status/leader.
func (h *API) handleLeader(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, h.cluster.Leader(), 0)
}

// handleSelf serves GET /v1/agent/self.
func (h *API) handleSelf(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, h.cluster.Self(), 0)
}

// handleLeave serves PUT /v1/agent/leave: answer first, then leave.
func (h *API) handleLeave(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"node": h.cfg.NodeName, "status": "leaving"}, 0)
	h.cluster.Leave()
}

// handleMembers serves GET /v1/members (the Serf view).
func (h *API) handleMembers(w http.ResponseWriter, r *http.Request) {
	out := h.cluster.Members()
	if out == nil {
		out = []api.Member{}
	}
	writeJSON(w, http.StatusOK, out, 0)
}

// handlePlugins serves GET /v1/plugins: this node's plugins.
func (h *API) handlePlugins(w http.ResponseWriter, r *http.Request) {
	out := api.PluginList{Node: h.cfg.NodeName, Plugins: h.plugins.Plugins()}
	if out.Plugins == nil {
		out.Plugins = []api.Plugin{}
	}
	writeJSON(w, http.StatusOK, out, 0)
}
