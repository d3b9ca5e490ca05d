package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strconv"

	"github.com/corral-dev/corral/daemon/snapshot"
)

// Snapshots saves and restores the whole cluster state. Both run on the
// leader; the API forwards the request to the leader's HTTP address from
// a follower.
type Snapshots interface {
	// Save writes a snapshot archive of the current state to w.
	Save(ctx context.Context, w io.Writer) error
	// Restore reads a whole archive from r, verifies it completely and only
	// then restores it. An archive that fails a check (the error wraps
	// snapshot.ErrBadArchive) changes nothing.
	Restore(ctx context.Context, r io.Reader) error
}

// Reloader reloads the agent's configuration (SIGHUP).
type Reloader interface {
	// Reload re-reads the config files, rescans plugin_dir and applies
	// what can change at run time; it returns what it did.
	Reload(ctx context.Context) (any, error)
}

// headerForwarded marks a request a follower forwarded to the leader, so
// it is never forwarded twice.
const headerForwarded = "X-Corral-Forwarded-By"

// onLeader runs next on the leader: a follower proxies the request to the
// leader's HTTP API (same scheme, same headers, token included).
func (h *API) onLeader(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if h.cluster.Self().State == "leader" {
			next(w, r)
			return
		}
		leader := h.cluster.Leader()
		if leader.HTTP == "" || r.Header.Get(headerForwarded) != "" {
			writeError(w, &httpError{code: http.StatusServiceUnavailable, err: errors.New("no cluster leader to serve this request; retry shortly")})
			return
		}
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		target := &url.URL{Scheme: scheme, Host: leader.HTTP}
		proxy := &httputil.ReverseProxy{
			Rewrite: func(pr *httputil.ProxyRequest) {
				pr.SetURL(target)
				pr.Out.Header.Set(headerForwarded, h.cfg.NodeName)
			},
			ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
				writeError(w, &httpError{code: http.StatusBadGateway, err: fmt.Errorf("forward to the leader %s: %w", leader.HTTP, err)})
			},
		}
		proxy.ServeHTTP(w, r)
	}
}

// handleSnapshotSave serves GET /v1/operator/snapshot: the archive is
// written to a temporary file first, so a failure is an error status, not
// a truncated download.
func (h *API) handleSnapshotSave(w http.ResponseWriter, r *http.Request) {
	f, err := os.CreateTemp("", "corral-snapshot-*.tgz")
	if err != nil {
		writeError(w, fmt.Errorf("temporary file for the snapshot: %w", err))
		return
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if err := h.cfg.Snapshots.Save(r.Context(), f); err != nil {
		writeError(w, fmt.Errorf("save snapshot: %w", err))
		return
	}
	size, err := f.Seek(0, io.SeekCurrent)
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		writeError(w, fmt.Errorf("save snapshot: %w", err))
		return
	}
	w.Header().Set("Content-Type", "application/gzip")
	w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	w.Header().Set("Content-Disposition", `attachment; filename="corral.snap"`)
	w.WriteHeader(http.StatusOK)
	_, _ = io.Copy(w, f)
}

// handleSnapshotRestore serves PUT /v1/operator/snapshot (body: an
// archive from GET).
func (h *API) handleSnapshotRestore(w http.ResponseWriter, r *http.Request) {
	if err := h.cfg.Snapshots.Restore(r.Context(), r.Body); err != nil {
		if errors.Is(err, snapshot.ErrBadArchive) {
			err = &httpError{code: http.StatusBadRequest, err: fmt.Errorf("%w; nothing was changed", err)}
		}
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"restored": true, "index": h.store.Index()}, h.store.Index())
}

// handleReload serves PUT /v1/agent/reload.
func (h *API) handleReload(w http.ResponseWriter, r *http.Request) {
	out, err := h.cfg.Reloader.Reload(r.Context())
	if err != nil {
		writeError(w, fmt.Errorf("reload: %w", err))
		return
	}
	writeJSON(w, http.StatusOK, out, 0)
}
