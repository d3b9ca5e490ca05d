package api

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// blockingSlack is added to a blocking query's wait for the call's own
// timeout, so the server answers before the client gives up.
const blockingSlack = 15 * time.Second

func jobPath(id string) string { return "/v1/jobs/" + url.PathEscape(id) }

// Submit submits one job (POST /v1/jobs). With a unique key that matches
// an existing job, the answer names that job and Existing is true.
func (c *Client) Submit(ctx context.Context, job JobRequest) (*SubmitResponse, error) {
	var out SubmitResponse
	if _, err := c.call(ctx, request{method: http.MethodPost, path: "/v1/jobs", body: job}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// SubmitAndWait submits one job and waits up to wait for it to end, in one
// request (POST /v1/jobs?wait=D). The answer's Job is terminal unless the
// wait ended first.
func (c *Client) SubmitAndWait(ctx context.Context, job JobRequest, wait time.Duration) (*SubmitResponse, error) {
	var out SubmitResponse
	r := request{method: http.MethodPost, path: "/v1/jobs", body: job,
		query: url.Values{"wait": {wait.String()}}, timeout: -1}
	if _, err := c.call(ctx, r, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// SubmitBatch submits several jobs in one raft entry (POST /v1/jobs with
// {"jobs": [...]}); the answer has one entry per job, in order.
func (c *Client) SubmitBatch(ctx context.Context, jobs []JobRequest) (*SubmitResponse, error) {
	var out SubmitResponse
	body := SubmitRequest{Jobs: jobs}
	if _, err := c.call(ctx, request{method: http.MethodPost, path: "/v1/jobs", body: body}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Job reads one job (GET /v1/jobs/{id}).
func (c *Client) Job(ctx context.Context, id string) (*Job, error) {
	var out Job
	if _, err := c.call(ctx, request{method: http.MethodGet, path: jobPath(id)}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// WaitJob is a blocking read of one job: it returns once the job's index
// passes index, or after wait with the job unchanged. It returns the job
// and the index to pass to the next call. index 0 answers at once.
func (c *Client) WaitJob(ctx context.Context, id string, index uint64, wait time.Duration) (*Job, uint64, error) {
	q := url.Values{}
	q.Set("index", strconv.FormatUint(index, 10))
	if wait > 0 {
		q.Set("wait", wait.String())
	}
	var out Job
	r := request{method: http.MethodGet, path: jobPath(id), query: q, timeout: wait + blockingSlack}
	newIndex, err := c.call(ctx, r, &out)
	if err != nil {
		return nil, 0, err
	}
	return &out, newIndex, nil
}

// Jobs lists jobs (GET /v1/jobs), filtered by queue and state when set.
func (c *Client) Jobs(ctx context.Context, queue, state string) (*JobList, error) {
	return c.JobsPage(ctx, JobQuery{Queue: queue, State: state})
}

// JobsPage reads one page of jobs (GET /v1/jobs) selected by q; pass the
// answer's NextCursor as q.Cursor for the next page.
func (c *Client) JobsPage(ctx context.Context, q JobQuery) (*JobList, error) {
	v := url.Values{}
	for k, s := range map[string]string{"queue": q.Queue, "state": q.State, "plugin": q.Plugin, "cursor": q.Cursor} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.UTC().Format(time.RFC3339Nano))
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	var out JobList
	if _, err := c.call(ctx, request{method: http.MethodGet, path: "/v1/jobs", query: v}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// BulkRetry retries every failed or cancelled job matching req
// (POST /v1/jobs/retry); with req.DryRun it only counts them.
func (c *Client) BulkRetry(ctx context.Context, req BulkRequest) (*BulkResult, error) {
	return c.bulk(ctx, "/v1/jobs/retry", req)
}

// BulkCancel cancels every scheduled, queued or running job matching req
// (POST /v1/jobs/cancel); with req.DryRun it only counts them.
func (c *Client) BulkCancel(ctx context.Context, req BulkRequest) (*BulkResult, error) {
	return c.bulk(ctx, "/v1/jobs/cancel", req)
}

func (c *Client) bulk(ctx context.Context, path string, req BulkRequest) (*BulkResult, error) {
	var out BulkResult
	// A bulk operation over many jobs takes one raft entry per batch: no
	// fixed timeout, ctx bounds it.
	if _, err := c.call(ctx, request{method: http.MethodPost, path: path, body: req, timeout: -1}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Cancel cancels a job (DELETE /v1/jobs/{id}) and returns it as it is now.
func (c *Client) Cancel(ctx context.Context, id string) (*Job, error) {
	var out Job
	if _, err := c.call(ctx, request{method: http.MethodDelete, path: jobPath(id)}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Retry puts a failed job back in its queue (POST /v1/jobs/{id}/retry).
func (c *Client) Retry(ctx context.Context, id string) (*Job, error) {
	var out Job
	if _, err := c.call(ctx, request{method: http.MethodPost, path: jobPath(id) + "/retry"}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Logs opens a job attempt's output (GET /v1/jobs/{id}/logs). attempt 0
// means the latest; with follow the stream stays open while the attempt
// runs. Only ctx bounds the call; the caller closes the stream.
func (c *Client) Logs(ctx context.Context, id string, attempt int, follow bool) (io.ReadCloser, error) {
	q := url.Values{}
	if attempt > 0 {
		q.Set("attempt", strconv.Itoa(attempt))
	}
	if follow {
		q.Set("follow", "true")
	}
	resp, cancel, err := c.send(ctx, request{method: http.MethodGet, path: jobPath(id) + "/logs", query: q, timeout: -1})
	if err != nil {
		return nil, err
	}
	return &stream{ReadCloser: resp.Body, cancel: cancel}, nil
}

// Queues lists the queues with their settings and job counts.
func (c *Client) Queues(ctx context.Context) (*QueueList, error) {
	var out QueueList
	if _, err := c.call(ctx, request{method: http.MethodGet, path: "/v1/queues"}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// PauseQueue stops dispatching from a queue; submits are still accepted.
func (c *Client) PauseQueue(ctx context.Context, name string) error {
	_, err := c.call(ctx, request{method: http.MethodPost, path: "/v1/queues/" + url.PathEscape(name) + "/pause"}, nil)
	return err
}

// ResumeQueue resumes dispatching from a paused queue.
func (c *Client) ResumeQueue(ctx context.Context, name string) error {
	_, err := c.call(ctx, request{method: http.MethodPost, path: "/v1/queues/" + url.PathEscape(name) + "/resume"}, nil)
	return err
}

// SetQueueRate sets a queue's rate limit (PUT /v1/queues/{name}/rate);
// rate "0" removes it.
func (c *Client) SetQueueRate(ctx context.Context, name string, rate QueueRate) (*Queue, error) {
	var out Queue
	if _, err := c.call(ctx, request{method: http.MethodPut, path: "/v1/queues/" + url.PathEscape(name) + "/rate", body: rate}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// PlanJob asks what would happen to a job submitted now (POST
// /v1/jobs/plan), without submitting it.
func (c *Client) PlanJob(ctx context.Context, job JobRequest) (*Plan, error) {
	var out Plan
	if _, err := c.call(ctx, request{method: http.MethodPost, path: "/v1/jobs/plan", body: job}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteQueue deletes a queue that holds no jobs, with its settings
// (DELETE /v1/queues/{name}).
func (c *Client) DeleteQueue(ctx context.Context, name string) error {
	_, err := c.call(ctx, request{method: http.MethodDelete, path: "/v1/queues/" + url.PathEscape(name)}, nil)
	return err
}

// Members lists the Serf members as this agent sees them.
func (c *Client) Members(ctx context.Context) ([]Member, error) {
	var out []Member
	if _, err := c.call(ctx, request{method: http.MethodGet, path: "/v1/members"}, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// RaftConfiguration reads the raft server set.
func (c *Client) RaftConfiguration(ctx context.Context) (*RaftConfiguration, error) {
	var out RaftConfiguration
	if _, err := c.call(ctx, request{method: http.MethodGet, path: "/v1/operator/raft/configuration"}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RemovePeer removes a server from the raft configuration by its ID.
func (c *Client) RemovePeer(ctx context.Context, id string) error {
	q := url.Values{"id": {id}}
	_, err := c.call(ctx, request{method: http.MethodDelete, path: "/v1/operator/raft/peer", query: q}, nil)
	return err
}

// Leader returns the current raft leader; its fields are empty when there
// is none.
func (c *Client) Leader(ctx context.Context) (*Leader, error) {
	var out Leader
	if _, err := c.call(ctx, request{method: http.MethodGet, path: "/v1/status/leader"}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Self describes the agent the client talks to.
func (c *Client) Self(ctx context.Context) (*Self, error) {
	var out Self
	if _, err := c.call(ctx, request{method: http.MethodGet, path: "/v1/agent/self"}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Leave asks the agent to leave the cluster gracefully and shut down. It
// returns once the agent has accepted the request.
func (c *Client) Leave(ctx context.Context) error {
	_, err := c.call(ctx, request{method: http.MethodPut, path: "/v1/agent/leave"}, nil)
	return err
}

// Plugins lists the worker plugins of the agent's node.
func (c *Client) Plugins(ctx context.Context) (*PluginList, error) {
	var out PluginList
	if _, err := c.call(ctx, request{method: http.MethodGet, path: "/v1/plugins"}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Metrics returns the agent's metrics in Prometheus text format.
func (c *Client) Metrics(ctx context.Context) ([]byte, error) {
	resp, cancel, err := c.send(ctx, request{method: http.MethodGet, path: "/v1/metrics"})
	if err != nil {
		return nil, err
	}
	defer cancel()
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}

// SnapshotSave streams a snapshot archive of the cluster state
// (GET /v1/operator/snapshot); the caller closes it.
func (c *Client) SnapshotSave(ctx context.Context) (io.ReadCloser, error) {
	resp, cancel, err := c.send(ctx, request{method: http.MethodGet, path: "/v1/operator/snapshot", timeout: -1})
	if err != nil {
		return nil, err
	}
	return &stream{ReadCloser: resp.Body, cancel: cancel}, nil
}

// SnapshotRestore replaces the cluster state with the archive read from r
// (PUT /v1/operator/snapshot). A bad archive is refused and changes
// nothing.
func (c *Client) SnapshotRestore(ctx context.Context, r io.Reader) error {
	_, err := c.call(ctx, request{method: http.MethodPut, path: "/v1/operator/snapshot", raw: r, timeout: -1}, nil)
	return err
}

// Reload asks the agent to reload its configuration and plugins
// (PUT /v1/agent/reload) and returns its report.
func (c *Client) Reload(ctx context.Context) (*ReloadResult, error) {
	var out ReloadResult
	if _, err := c.call(ctx, request{method: http.MethodPut, path: "/v1/agent/reload"}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
