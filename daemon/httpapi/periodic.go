package httpapi

import (
	"errors"
	"net/http"
	"time"

	"github.com/corral-dev/corral/daemon/api"
	"github.com/corral-dev/corral/queue"
	"github.com/oklog/ulid/v2"
)

// toAPIPeriodic converts a stored periodic job; now picks the next run.
func toAPIPeriodic(p queue.PeriodicInfo, now time.Time) api.Periodic {
	return api.Periodic{
		Name:     p.Name,
		Cron:     p.Cron,
		Timezone: p.Timezone,
		Overlap:  p.Overlap.String(),
		CatchUp:  p.CatchUp,
		Job: api.JobRequest{
			Queue: p.Job.Queue, Plugin: p.Job.Plugin, Payload: displayBytes(p.Job.Payload),
			Priority: p.Job.Priority, MaxAttempts: p.Job.MaxAttempts, Timeout: api.Duration(p.Job.Timeout),
			UniqueKey: p.Job.UniqueKey, UniqueFor: api.Duration(p.Job.UniqueFor), Constraints: p.Job.Constraints,
		},
		Next:      p.Next(now),
		LastTick:  p.LastTick,
		LastJob:   p.LastJob,
		Fired:     p.Fired,
		Skipped:   p.Skipped,
		CreatedAt: p.CreatedAt,
	}
}

// handleListPeriodic serves GET /v1/periodic.
func (h *API) handleListPeriodic(w http.ResponseWriter, r *http.Request) {
	index := h.store.Index()
	now := time.Now()
	out := api.PeriodicList{Periodics: []api.Periodic{}, Index: index}
	for _, p := range h.store.Periodics() {
		out.Periodics = append(out.Periodics, toAPIPeriodic(p, now))
	}
	writeJSON(w, http.StatusOK, out, index)
}

// handleApplyPeriodic serves PUT /v1/periodic/{name}.
func (h *API) handleApplyPeriodic(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	var body api.PeriodicRequest
	if err := decodeBody(w, r, int64(h.cfg.MaxRequestBytes), &body); err != nil {
		writeError(w, err)
		return
	}
	if body.Job.Delay != 0 || body.Job.RunAt != nil {
		writeError(w, badRequest("a periodic job's template cannot set delay or run_at: the schedule says when it runs"))
		return
	}
	if len(body.Job.DependsOn) > 0 || body.Job.Name != "" {
		writeError(w, badRequest("a periodic job's template cannot set depends_on or name: each firing is a job on its own"))
		return
	}
	spec, err := specFromRequest(&body.Job, time.Now())
	if err == nil {
		err = h.checkLimits(&spec)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	overlap, err := queue.ParseOverlap(body.Overlap)
	if err != nil {
		writeError(w, err)
		return
	}
	p := queue.Periodic{Name: name, Cron: body.Cron, Timezone: body.Timezone, Overlap: overlap, CatchUp: body.CatchUp, Job: spec}
	if err := queue.ValidatePeriodic(&p); err != nil {
		writeError(w, err)
		return
	}
	res, index, err := h.writer.Write(r.Context(), &queue.SetPeriodic{Periodic: p})
	if err = firstError(err, res.Err); err != nil {
		writeError(w, err)
		return
	}
	h.waitIndex(r, index)
	stored, ok := h.store.Periodic(name)
	if !ok {
		writeError(w, &httpError{code: http.StatusServiceUnavailable, err: errors.New("periodic job applied but not yet replicated to this node; list again shortly")})
		return
	}
	writeJSON(w, http.StatusOK, toAPIPeriodic(stored, time.Now()), index)
}

// handleDeletePeriodic serves DELETE /v1/periodic/{name}.
func (h *API) handleDeletePeriodic(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	res, index, err := h.writer.Write(r.Context(), &queue.DeletePeriodic{Name: name})
	if err = firstError(err, res.Err); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"deleted": name}, index)
}

// handleRunPeriodic serves POST /v1/periodic/{name}/run.
func (h *API) handleRunPeriodic(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	cmd := &queue.FirePeriodic{Name: name, ID: ulid.Make().String(), Manual: true}
	res, index, err := h.writer.Write(r.Context(), cmd)
	if err = firstError(err, res.Err); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, api.PeriodicRun{ID: res.Submitted[0].ID, Index: index}, index)
}

// waitIndex gives the local replica a moment to reach index, so a write
// answered from this node shows itself.
func (h *API) waitIndex(r *http.Request, index uint64) {
	waitFor(r.Context(), h.store, 2*time.Second, func() bool { return h.store.Index() >= index })
}

func firstError(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}
