package daemon

import (
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/corral-dev/corral/daemon/api"
	"github.com/hashicorp/raft"
)

// routes builds the /v1 router.
func (a *Agent) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/jobs", a.leaderOnly(a.handleSubmit))
	mux.HandleFunc("GET /v1/jobs", a.caughtUp(a.handleListJobs))
	mux.HandleFunc("GET /v1/jobs/{id}", a.caughtUp(a.handleGetJob))
	mux.HandleFunc("DELETE /v1/jobs/{id}", a.leaderOnly(a.handleCancel))
	mux.HandleFunc("POST /v1/jobs/{id}/retry", a.leaderOnly(a.handleRetry))
	mux.HandleFunc("GET /v1/queues", a.caughtUp(a.handleQueues))
	mux.HandleFunc("POST /v1/queues/{name}/pause", a.leaderOnly(a.handlePause(true)))
	mux.HandleFunc("POST /v1/queues/{name}/resume", a.leaderOnly(a.handlePause(false)))
	mux.HandleFunc("GET /v1/operator/raft/configuration", a.handleRaftConfiguration)
	mux.HandleFunc("DELETE /v1/operator/raft/peer", a.leaderOnly(a.handleRemovePeer))
	mux.HandleFunc("GET /v1/status/leader", a.handleLeader)
	mux.HandleFunc("GET /v1/agent/self", a.handleSelf)
	mux.HandleFunc("PUT /v1/agent/leave", a.handleLeave)
	a.registerExtraRoutes(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &httpError{code: http.StatusNotFound, err: fmt.Errorf("no such endpoint: %s %s (see the API section of the README)", r.Method, r.URL.Path)})
	})
	return a.stalenessHeaders(mux)
}

// stalenessHeaders notes on every read how fresh this node's state is
// (Consul's X-Consul-KnownLeader / X-Consul-LastContact): whether it knows
// a leader, and how long ago it last heard from it (0 on the leader).
func (a *Agent) stalenessHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			addr, _ := a.node.Raft.LeaderWithID()
			w.Header().Set(headerKnownLeader, strconv.FormatBool(addr != ""))
			contact := int64(0)
			if a.node.Raft.State() != raft.Leader {
				contact = time.Since(a.node.Raft.LastContact()).Milliseconds()
			}
			w.Header().Set(headerLastContact, strconv.FormatInt(contact, 10))
		}
		next.ServeHTTP(w, r)
	})
}

// handleRaftConfiguration serves GET /v1/operator/raft/configuration.
func (a *Agent) handleRaftConfiguration(w http.ResponseWriter, r *http.Request) {
	fut := a.node.Raft.GetConfiguration()
	if err := fut.Error(); err != nil {
		writeError(w, fmt.Errorf("read raft configuration: %w", err))
		return
	}
	_, leaderID := a.node.Raft.LeaderWithID()
	out := api.RaftConfiguration{Index: fut.Index(), Servers: []api.RaftServer{}}
	for _, s := range fut.Configuration().Servers {
		out.Servers = append(out.Servers, api.RaftServer{
			ID:      string(s.ID),
			Node:    a.nodeName(string(s.ID)),
			Address: string(s.Address),
			Leader:  s.ID == leaderID,
			Voter:   s.Suffrage == raft.Voter,
		})
	}
	writeJSON(w, http.StatusOK, out, fut.Index())
}

// handleRemovePeer serves DELETE /v1/operator/raft/peer?id= (leader only).
func (a *Agent) handleRemovePeer(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("id")
	if id == "" {
		writeError(w, badRequest("missing ?id=: give the server ID shown by `corral operator raft list-peers`"))
		return
	}
	fut := a.node.Raft.GetConfiguration()
	if err := fut.Error(); err != nil {
		writeError(w, err)
		return
	}
	found := false
	for _, s := range fut.Configuration().Servers {
		found = found || string(s.ID) == id
	}
	if !found {
		writeError(w, &httpError{code: http.StatusNotFound, err: fmt.Errorf("no raft peer with id %s", id)})
		return
	}
	if id == a.nodeID {
		writeError(w, badRequest("refusing to remove the leader itself; run `corral leave` on it instead"))
		return
	}
	if err := a.node.Raft.RemoveServer(raft.ServerID(id), fut.Index(), 0).Error(); err != nil {
		writeError(w, fmt.Errorf("remove peer %s: %w", id, mapRaftError(err)))
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"removed": id}, 0)
}

// handleLeader serves GET /v1/status/leader.
func (a *Agent) handleLeader(w http.ResponseWriter, r *http.Request) {
	addr, id := a.node.Raft.LeaderWithID()
	out := api.Leader{ID: string(id), Address: string(addr)}
	if id != "" {
		out.Node = a.nodeName(string(id))
		out.HTTP, _ = a.httpAddrOf(string(id))
	}
	writeJSON(w, http.StatusOK, out, 0)
}

// handleSelf serves GET /v1/agent/self.
func (a *Agent) handleSelf(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, a.self(), 0)
}

// self describes this node.
func (a *Agent) self() api.Self {
	stats := a.node.Raft.Stats()
	_, leaderID := a.node.Raft.LeaderWithID()
	term, _ := strconv.ParseUint(stats["term"], 10, 64)
	return api.Self{
		Node:         a.cfg.NodeName,
		ID:           a.nodeID,
		State:        stateName(a.node.Raft.State()),
		Leader:       string(leaderID),
		Term:         term,
		LastIndex:    a.node.Raft.LastIndex(),
		AppliedIndex: a.node.Raft.AppliedIndex(),
		Stats:        stats,
		Version:      Version,
	}
}

func stateName(s raft.RaftState) string {
	switch s {
	case raft.Leader:
		return "leader"
	case raft.Follower:
		return "follower"
	case raft.Candidate:
		return "candidate"
	}
	return "shutdown"
}

// handleLeave serves PUT /v1/agent/leave: answer first, then leave.
func (a *Agent) handleLeave(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"node": a.cfg.NodeName, "status": "leaving"}, 0)
	go func() {
		if err := a.Leave(); err != nil {
			a.logger.Error("leave failed", "error", err)
		}
	}()
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
