package daemon

import (
	"net/http"
	"net/http/pprof"
)

// registerExtraRoutes adds the endpoints of the plugin and membership
// subsystems and the node-to-leader protocol.
func (a *Agent) registerExtraRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/jobs/{id}/logs", a.caughtUp(a.handleLogs))
	mux.HandleFunc("GET /v1/plugins", a.handlePlugins)
	mux.HandleFunc("POST /v1/internal/poll", a.internalOnLeader(internalCall(16<<20, a.poll)))
	mux.HandleFunc("POST /v1/internal/heartbeat", a.internalOnLeader(internalCall(16<<20, a.heartbeat)))
	mux.HandleFunc("POST /v1/internal/complete", a.internalOnLeader(internalCall(64<<20, a.complete)))
	mux.HandleFunc("GET /v1/internal/progress/{id}", a.handleProgress)
	mux.HandleFunc("GET /v1/internal/stats", a.handleStats)
	mux.HandleFunc("GET /v1/members", a.handleMembers)
	mux.HandleFunc("GET /v1/metrics", a.handleMetrics)
	if a.cfg.EnableDebug {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
}
