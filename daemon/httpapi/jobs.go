package httpapi

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/corral-dev/corral/daemon/api"
	"github.com/corral-dev/corral/queue"
	"github.com/oklog/ulid/v2"
)

// submitBody accepts one job or the batch form {"jobs": [...]}.
type submitBody struct {
	api.JobRequest
	Jobs []api.JobRequest `json:"jobs"`
}

// handleSubmit serves POST /v1/jobs. With ?wait=D the answer
// waits (at most D) until every submitted job has ended and carries the
// jobs: submit and result in one round trip.
func (h *API) handleSubmit(w http.ResponseWriter, r *http.Request) {
	authz, ok := h.authenticate(w, r, "queue:write on the job's queue")
	if !ok {
		return
	}
	wait, err := submitWait(r)
	if err != nil {
		writeError(w, err)
		return
	}
	var body submitBody
	if err := decodeBody(w, r, int64(h.cfg.MaxRequestBytes), &body); err != nil {
		writeError(w, err)
		return
	}
	batch := body.Jobs != nil
	reqs := body.Jobs
	if !batch {
		reqs = []api.JobRequest{body.JobRequest}
	} else if body.Plugin != "" || len(body.Payload) > 0 {
		writeError(w, badRequest("send either one job or {\"jobs\": [...]}, not both"))
		return
	}
	if len(reqs) == 0 {
		writeError(w, badRequest("no jobs in request"))
		return
	}
	now := time.Now().UTC()
	cmd := &queue.Submit{IDs: make([]string, len(reqs)), Specs: make([]queue.Spec, len(reqs))}
	for i := range cmd.IDs {
		cmd.IDs[i] = ulid.Make().String()
	}
	parents, err := resolveDeps(reqs, cmd.IDs)
	if err != nil {
		writeError(w, err)
		return
	}
	for i := range reqs {
		spec, err := specFromRequest(&reqs[i], now)
		spec.DependsOn = parents[i]
		if err == nil {
			err = h.checkSpec(&spec)
		}
		if err != nil {
			if batch {
				err = fmt.Errorf("jobs[%d]: %w", i, err)
			}
			writeError(w, err) // nothing is applied when any job is bad
			return
		}
		cmd.Specs[i] = spec
	}
	for i := range cmd.Specs {
		if !h.check(w, authz, permQueueWrite(queueOf(cmd.Specs[i].Queue))) {
			return
		}
	}
	var write queue.Command = cmd
	if hasDeps(parents) {
		// All or nothing, with the dependency rules (queue/deps.go).
		write = &queue.SubmitDAG{IDs: cmd.IDs, Specs: cmd.Specs}
		if !h.checkParentsReadable(w, authz, cmd.Specs) {
			return
		}
	}
	res, index, jobs, err := h.writer.WriteAndWait(r.Context(), write, wait)
	if err == nil {
		err = res.Err
	}
	if err != nil {
		writeError(w, err)
		return
	}
	ended := func(i int) *api.Job {
		if i >= len(jobs) || jobs[i] == nil {
			return nil
		}
		aj := toAPIJob(jobs[i])
		h.annotate(r.Context(), jobs[i], &aj)
		return &aj
	}
	out := api.SubmitResponse{Index: index, Warnings: h.pluginWarnings(reqs)}
	if !batch {
		s := res.Submitted[0]
		if s.Err != nil {
			writeError(w, s.Err)
			return
		}
		out.ID, out.Existing, out.Job = s.ID, s.Existing, ended(0)
		writeJSON(w, http.StatusOK, out, index)
		return
	}
	out.Jobs = make([]api.SubmittedJob, len(res.Submitted))
	for i, s := range res.Submitted {
		out.Jobs[i] = api.SubmittedJob{Name: reqs[i].Name, ID: s.ID, Existing: s.Existing, Job: ended(i)}
		if s.Err != nil {
			out.Jobs[i].Error = s.Err.Error()
		}
	}
	writeJSON(w, http.StatusOK, out, index)
}

// submitWait reads a submit's ?wait=D (0 when absent), capped like a
// blocking query's wait.
func submitWait(r *http.Request) (time.Duration, error) {
	return parseWait(r.URL.Query().Get("wait"), 0)
}

// checkSpec runs every check a job submitted or planned must pass: the
// queue's bounds, this node's size limits and the spec's own validity.
func (h *API) checkSpec(spec *queue.Spec) error {
	if err := queue.CheckBounds(spec); err != nil {
		return err
	}
	if err := h.checkLimits(spec); err != nil {
		return err
	}
	return queue.ValidateSpec(spec)
}

// checkLimits enforces the node's size limits on a spec.
func (h *API) checkLimits(spec *queue.Spec) error {
	if max := h.cfg.MaxPayloadBytes; max > 0 && len(spec.Payload) > max {
		return &httpError{code: http.StatusRequestEntityTooLarge,
			err: fmt.Errorf("payload of %d bytes exceeds the %d-byte limit (limits.max_payload_bytes); store large data elsewhere and pass a reference", len(spec.Payload), max)}
	}
	return nil
}

// missingWait is how long a blocking read of a job this node has not
// seen waits for it: it may still be replicating from a submit elsewhere.
const missingWait = 2 * time.Second

// handleGetJob serves GET /v1/jobs/{id} in one of three modes:
//   - default: this node's replica (on a follower, as fresh as its last
//     contact with the leader, see X-Corral-Last-Contact);
//   - ?stale=true: the same, said explicitly (any node, even without a
//     leader);
//   - ?consistent=true: read on the leader after it verified that it
//     still leads; never older than a write acknowledged before the read.
//
// With ?index=N it blocks until the job's own index passes N.
func (h *API) handleGetJob(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	authz, ok := h.authenticate(w, r, "queue:read on the job's queue")
	if !ok {
		return
	}
	q := r.URL.Query()
	consistent, stale := q.Get("consistent") == "true", q.Get("stale") == "true"
	if consistent && stale {
		writeError(w, badRequest("set either ?consistent=true or ?stale=true, not both"))
		return
	}
	minIndex, wait, blocking, err := blockingQuery(r)
	if err != nil {
		writeError(w, err)
		return
	}
	var job *queue.Job
	var index uint64
	if consistent {
		if blocking {
			writeError(w, badRequest("?consistent=true does not take ?index=: use a blocking read without it"))
			return
		}
		if job, index, err = h.writer.ReadJob(r.Context(), id); err != nil {
			writeError(w, err)
			return
		}
	} else {
		job, ok = h.store.Get(id)
		if blocking && !ok {
			waitFor(r.Context(), h.store, min(wait, missingWait), func() bool {
				job, ok = h.store.Get(id)
				return ok
			})
		}
		if blocking && ok && job.Index <= minIndex {
			waitFor(r.Context(), h.store, wait, func() bool {
				job, ok = h.store.Get(id)
				return !ok || job.Index > minIndex
			})
		}
		if ok {
			index = job.Index
		} else {
			job = nil
		}
	}
	if job == nil {
		writeError(w, jobNotFound(id))
		return
	}
	if !h.check(w, authz, permQueueRead(job.Queue)) {
		return
	}
	out := toAPIJob(job)
	out.Children = h.store.Children(job.ID)
	h.annotate(r.Context(), job, &out)
	writeJSON(w, http.StatusOK, out, index)
}

// handleListJobs serves GET /v1/jobs?queue=&state=&plugin=&search=&since=
// &limit=&offset=&cursor=, newest first. With a limit, next_cursor (when
// more jobs follow) fetches the next page.
func (h *API) handleListJobs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := queue.Filter{Queue: q.Get("queue"), Plugin: q.Get("plugin")}
	authz, ok := h.authenticate(w, r, "queue:read")
	if !ok || (f.Queue != "" && !h.check(w, authz, permQueueRead(f.Queue))) {
		return
	}
	if s := q.Get("state"); s != "" {
		st, err := queue.ParseState(s)
		if err != nil {
			writeError(w, badRequest("state: %v", err))
			return
		}
		f.State = st
	}
	limit, err := nonNegative(q, "limit")
	if err != nil {
		writeError(w, err)
		return
	}
	offset, err := nonNegative(q, "offset")
	if err != nil {
		writeError(w, err)
		return
	}
	if f.Since, err = parseSince(q.Get("since"), time.Now()); err != nil {
		writeError(w, err)
		return
	}
	cur, err := parseCursor(q.Get("cursor"))
	if err != nil {
		writeError(w, err)
		return
	}
	search := q.Get("search")
	if err := h.blockOnStore(r); err != nil {
		writeError(w, err)
		return
	}
	index := h.store.Index()
	readAll := f.Queue != "" || authz.Management()
	jobs := h.store.List(f)
	if search != "" || !readAll {
		kept := jobs[:0:0]
		for _, j := range jobs {
			if (search == "" || strings.HasPrefix(j.ID, search) || j.UniqueKey == search) &&
				(readAll || authz.QueueRead(j.Queue)) {
				kept = append(kept, j)
			}
		}
		jobs = kept
	}
	total := len(jobs)
	if cur != nil {
		jobs = jobs[cur.position(jobs):]
	}
	jobs = jobs[min(offset, len(jobs)):]
	out := api.JobList{Index: index}
	if limit > 0 && len(jobs) > limit {
		jobs = jobs[:limit]
		out.NextCursor = cursorOf(jobs[limit-1])
	}
	out.Jobs = make([]api.Job, len(jobs))
	if f.Plugin != "" || search != "" || offset > 0 || limit > 0 || !f.Since.IsZero() || cur != nil {
		out.Total = &total
	}
	for i, j := range jobs {
		out.Jobs[i] = toAPIJob(j)
		out.Jobs[i].Children = h.store.Children(j.ID)
	}
	writeJSON(w, http.StatusOK, out, index)
}

// nonNegative reads an optional non-negative integer query parameter.
func nonNegative(q url.Values, name string) (int, error) {
	s := q.Get(name)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, badRequest("%s=%q: must be a non-negative integer", name, s)
	}
	return n, nil
}

// blockOnStore serves the blocking-query parameters of a list read: with
// ?index=N it waits until the store has moved past N (or the wait ends).
func (h *API) blockOnStore(r *http.Request) error {
	minIndex, wait, blocking, err := blockingQuery(r)
	if err == nil && blocking {
		waitFor(r.Context(), h.store, wait, func() bool { return h.store.Index() > minIndex })
	}
	return err
}

// handleCancel serves DELETE /v1/jobs/{id}.
func (h *API) handleCancel(w http.ResponseWriter, r *http.Request) {
	h.applyJobCommand(w, r, &queue.Cancel{ID: r.PathValue("id")})
}

// handleRetry serves POST /v1/jobs/{id}/retry.
func (h *API) handleRetry(w http.ResponseWriter, r *http.Request) {
	h.applyJobCommand(w, r, &queue.Retry{ID: r.PathValue("id")})
}

func (h *API) applyJobCommand(w http.ResponseWriter, r *http.Request, cmd queue.Command) {
	if h.resolver != nil {
		authz, ok := h.authenticate(w, r, "queue:write on the job's queue")
		if !ok {
			return
		}
		id := r.PathValue("id")
		job, found := h.store.Get(id)
		if !found {
			// It may still be replicating from a submit elsewhere.
			waitFor(r.Context(), h.store, missingWait, func() bool {
				job, found = h.store.Get(id)
				return found
			})
		}
		if !found {
			writeError(w, jobNotFound(id))
			return
		}
		if !h.check(w, authz, permQueueWrite(job.Queue)) {
			return
		}
	}
	res, index, err := h.writer.Write(r.Context(), cmd)
	if err == nil {
		err = res.Err
	}
	if err != nil {
		writeError(w, fmt.Errorf("job %s: %w", r.PathValue("id"), err))
		return
	}
	writeJSON(w, http.StatusOK, toAPIJob(res.Job), index)
}

// handleQueues serves GET /v1/queues.
func (h *API) handleQueues(w http.ResponseWriter, r *http.Request) {
	authz, ok := h.authenticate(w, r, "queue:read")
	if !ok {
		return
	}
	if err := h.blockOnStore(r); err != nil {
		writeError(w, err)
		return
	}
	index := h.store.Index()
	qs := h.store.Queues()
	now := time.Now()
	out := api.QueueList{Queues: make([]api.Queue, 0, len(qs)), Index: index}
	for _, q := range qs {
		if !authz.QueueRead(q.Name) {
			continue
		}
		aq := api.Queue{
			Name:        q.Name,
			Paused:      q.Config.Paused,
			Concurrency: q.Config.Concurrency,
			MaxAttempts: q.Config.MaxAttempts,
			Retention:   api.Duration(q.Config.Retention),
			Counts:      map[string]int{},
		}
		if aq.MaxAttempts == 0 {
			aq.MaxAttempts = queue.DefaultMaxAttempts
		}
		if aq.Retention == 0 {
			aq.Retention = api.Duration(queue.DefaultRetention)
		}
		for st, n := range q.Counts {
			aq.Counts[st.String()] = n
		}
		addRate(&aq, q.Rate, now)
		out.Queues = append(out.Queues, aq)
	}
	writeJSON(w, http.StatusOK, out, index)
}

// handlePause serves POST /v1/queues/{name}/pause and .../resume.
func (h *API) handlePause(paused bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		if err := checkQueueName(name); err != nil {
			writeError(w, err)
			return
		}
		if !h.queueExists(name) {
			writeError(w, queueNotFound(name))
			return
		}
		cmd := &queue.SetQueue{Name: name, Fields: queue.FieldPaused, Config: queue.QueueConfig{Paused: paused}}
		res, index, err := h.writer.Write(r.Context(), cmd)
		if err == nil {
			err = res.Err
		}
		if err != nil {
			writeError(w, fmt.Errorf("queue %s: %w", name, err))
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"name": name, "paused": paused}, index)
	}
}

// checkQueueName rejects (400) a queue name in a path that no queue can
// have.
func checkQueueName(name string) error {
	if !queue.ValidQueueName(name) {
		return badRequest("queue name %q must be 1-%d characters of A-Z a-z 0-9 _ . -", truncate(name, queue.MaxQueueName), queue.MaxQueueName)
	}
	return nil
}

// jobNotFound is the 404 of an unknown job.
func jobNotFound(id string) error {
	return &httpError{code: http.StatusNotFound, err: fmt.Errorf("job %s not found", id)}
}

// queueNotFound is the 404 of a queue the local replica does not know.
func queueNotFound(name string) error {
	return &httpError{code: http.StatusNotFound, err: fmt.Errorf("queue %s not found: queues exist once a job was submitted to them or a queue block names them (see corral queue list)", name)}
}

// queueExists reports whether the local replica knows the queue.
func (h *API) queueExists(name string) bool {
	_, ok := h.queueInfo(name)
	return ok
}

// queueInfo returns the local replica's view of one queue.
func (h *API) queueInfo(name string) (queue.QueueInfo, bool) {
	for _, q := range h.store.Queues() {
		if q.Name == name {
			return q, true
		}
	}
	return queue.QueueInfo{}, false
}

// truncate shortens s to n bytes for an error message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// queueOf returns the queue a spec lands in.
func queueOf(name string) string {
	if name == "" {
		return queue.DefaultQueue
	}
	return name
}
