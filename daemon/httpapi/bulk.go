package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/corral-dev/corral/daemon/acl"
	"github.com/corral-dev/corral/daemon/api"
	"github.com/corral-dev/corral/queue"
)

// bulkBatch is the most jobs one raft entry of a bulk operation changes:
// large enough that 1,000 jobs take two entries, small enough that one
// entry's Apply stays short.
const bulkBatch = 500

// handleBulk serves POST /v1/jobs/retry (k = KindBulkRetry) and
// POST /v1/jobs/cancel (KindBulkCancel): the jobs matching the body's
// filter are changed on the leader in batched raft entries until none is
// left; with dry_run they are only counted, on this node's replica.
func (h *API) handleBulk(k queue.Kind) http.HandlerFunc {
	verb := "retry"
	if k == queue.KindBulkCancel {
		verb = "cancel"
	}
	return func(w http.ResponseWriter, r *http.Request) {
		authz, ok := h.authenticate(w, r, "queue:write on the jobs' queue")
		if !ok {
			return
		}
		var body api.BulkRequest
		if err := decodeBody(w, r, int64(h.cfg.MaxRequestBytes), &body); err != nil {
			writeError(w, err)
			return
		}
		f, err := bulkFilter(k, &body)
		if err != nil {
			writeError(w, err)
			return
		}
		if !h.checkQueuesWrite(w, authz, f.Queue) {
			return
		}
		if body.DryRun {
			index := h.store.Index()
			n, err := h.store.CountBulk(k, f, time.Now())
			if err != nil {
				writeError(w, err)
				return
			}
			writeJSON(w, http.StatusOK, api.BulkResult{Count: n, DryRun: true, Index: index}, index)
			return
		}
		out, err := h.runBulk(r.Context(), k, f)
		if err != nil {
			if out.Entries > 0 {
				err = fmt.Errorf("%s stopped after %d jobs in %d raft entries: %w", verb, out.Count, out.Entries, err)
			}
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, out, out.Index)
	}
}

// bulkFilter turns a request into a validated filter (400 when bad).
func bulkFilter(k queue.Kind, body *api.BulkRequest) (queue.BulkFilter, error) {
	f := queue.BulkFilter{Queue: body.Queue, Plugin: body.Plugin, OlderThan: time.Duration(body.OlderThan)}
	if body.State != "" {
		st, err := queue.ParseState(body.State)
		if err != nil {
			return f, badRequest("state: %v", err)
		}
		f.State = st
	}
	if err := queue.ValidateBulk(k, &f); err != nil {
		return f, &httpError{code: http.StatusBadRequest, err: err}
	}
	return f, nil
}

// runBulk applies a bulk command batch after batch, each batch continuing
// the previous one (queue.Result.Resume), until no matching job is left.
// The first batch fixes the operation's cutoffs on the leader, so it ends
// even while retried jobs fail again. out counts what was done, also when
// a later batch fails.
func (h *API) runBulk(ctx context.Context, k queue.Kind, f queue.BulkFilter) (api.BulkResult, error) {
	var out api.BulkResult
	f.Limit = bulkBatch
	for {
		var cmd queue.Command = &queue.BulkRetry{Filter: f}
		if k == queue.KindBulkCancel {
			cmd = &queue.BulkCancel{Filter: f}
		}
		res, index, err := h.writer.Write(ctx, cmd)
		if err == nil {
			err = res.Err
		}
		if err != nil {
			return out, err
		}
		out.Count += res.Count
		out.Entries++
		out.Index = index
		switch {
		case !res.More:
			return out, nil
		case res.Resume == nil || res.Count == 0:
			return out, errors.New("bulk operation made no progress (a leader of an older version?); run it again")
		}
		f = *res.Resume
	}
}

// checkQueuesWrite answers 403 unless authz may write queue name, or,
// for a filter over every queue (name ""), every queue there is.
func (h *API) checkQueuesWrite(w http.ResponseWriter, authz *acl.Authorizer, name string) bool {
	if name != "" {
		return h.check(w, authz, permQueueWrite(name))
	}
	if authz.Management() {
		return true
	}
	for _, q := range h.store.Queues() {
		if !authz.QueueWrite(q.Name) {
			writeError(w, &httpError{code: http.StatusForbidden,
				err: fmt.Errorf("permission denied: a filter over all queues needs queue:write on every queue, and this token lacks it on %q; name one queue", q.Name)})
			return false
		}
	}
	return true
}

// handleDeleteQueue serves DELETE /v1/queues/{name}: a queue without jobs
// is deleted with its settings; one with jobs is refused (409) with how
// many it holds.
func (h *API) handleDeleteQueue(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := checkQueueName(name); err != nil {
		writeError(w, err)
		return
	}
	res, index, err := h.writer.Write(r.Context(), &queue.DeleteQueue{Name: name})
	if err == nil {
		err = res.Err
	}
	if errors.Is(err, queue.ErrQueueNotFound) {
		err = &httpError{code: http.StatusNotFound, err: fmt.Errorf("queue %s not found (see corral queue list)", name)}
	}
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"deleted": name}, index)
}
