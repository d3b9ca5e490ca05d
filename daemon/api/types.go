// Package api holds the JSON shapes of Corral's HTTP API (/v1) and a Go
// client for it. The daemon serves these types; the CLI and tests use the
// client.
package api

import (
	"bytes"
	"encoding/json"
	"time"
)

// JobRequest is one job in POST /v1/jobs. Either Delay or RunAt may be set.
type JobRequest struct {
	Queue       string            `json:"queue,omitempty"`
	Plugin      string            `json:"plugin"`
	Payload     json.RawMessage   `json:"payload,omitempty"`
	Priority    int               `json:"priority,omitempty"`
	MaxAttempts int               `json:"max_attempts,omitempty"`
	Timeout     Duration          `json:"timeout,omitempty"`
	RunAt       *time.Time        `json:"run_at,omitempty"`
	Delay       Duration          `json:"delay,omitempty"`
	UniqueKey   string            `json:"unique_key,omitempty"`
	UniqueFor   Duration          `json:"unique_for,omitempty"`
	Constraints map[string]string `json:"constraints,omitempty"`
	// Name is a local name by which other jobs of the same request refer
	// to this one in DependsOn (a batch only; not stored).
	Name string `json:"name,omitempty"`
	// DependsOn lists the job's parents: IDs of existing jobs or names of
	// jobs in the same request. The job stays blocked until each parent
	// succeeded; a failed or cancelled parent cancels it.
	DependsOn []string `json:"depends_on,omitempty"`
}

// SubmitRequest is the batch form of POST /v1/jobs: {"jobs": [...]}.
type SubmitRequest struct {
	Jobs []JobRequest `json:"jobs"`
}

// SubmitResponse answers POST /v1/jobs. For a single-job submit, ID and
// Existing describe it; for the batch form Jobs has one entry per request.
type SubmitResponse struct {
	ID       string         `json:"id,omitempty"`
	Existing bool           `json:"existing,omitempty"`
	Jobs     []SubmittedJob `json:"jobs,omitempty"`
	Index    uint64         `json:"index"`
	// Warnings say why an accepted job may not run soon (e.g. no node
	// has its plugin).
	Warnings []string `json:"warnings,omitempty"`
	// Job is the job as it stands when a submit with ?wait= returns:
	// terminal, or its current state when the wait ended first.
	Job *Job `json:"job,omitempty"`
}

// SubmittedJob is one entry of a batch submit response.
type SubmittedJob struct {
	// Name is the request's local name of the job, if it had one.
	Name     string `json:"name,omitempty"`
	ID       string `json:"id,omitempty"`
	Existing bool   `json:"existing,omitempty"`
	Error    string `json:"error,omitempty"`
	// Job: see SubmitResponse.Job.
	Job *Job `json:"job,omitempty"`
}

// Attempt is one entry of a job's history.
type Attempt struct {
	Attempt  int       `json:"attempt"`
	Node     string    `json:"node"`
	Token    uint64    `json:"token"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished,omitzero"`
	Outcome  string    `json:"outcome,omitempty"`
	Error    string    `json:"error,omitempty"`
}

// Progress is the last progress a running job reported.
type Progress struct {
	Percent float64 `json:"percent"`
	Message string  `json:"message,omitempty"`
}

// Job is a job as the API shows it (DESIGN §5 field names).
type Job struct {
	ID          string            `json:"id"`
	Queue       string            `json:"queue"`
	Plugin      string            `json:"plugin"`
	Payload     json.RawMessage   `json:"payload,omitempty"`
	Priority    int               `json:"priority"`
	MaxAttempts int               `json:"max_attempts"`
	Timeout     Duration          `json:"timeout"`
	RunAt       time.Time         `json:"run_at,omitzero"`
	UniqueKey   string            `json:"unique_key,omitempty"`
	UniqueFor   Duration          `json:"unique_for,omitempty"`
	Constraints map[string]string `json:"constraints,omitempty"`
	// Parents are the IDs of the jobs this one waits for (depends_on);
	// Children the IDs of the jobs that wait for it.
	Parents         []string        `json:"parents,omitempty"`
	Children        []string        `json:"children,omitempty"`
	State           string          `json:"state"`
	Attempt         int             `json:"attempt"`
	Node            string          `json:"node,omitempty"`
	Token           uint64          `json:"token,omitempty"`
	LeaseExpiresAt  time.Time       `json:"lease_expires_at,omitzero"`
	CancelRequested bool            `json:"cancel_requested,omitempty"`
	Result          json.RawMessage `json:"result,omitempty"`
	Error           string          `json:"error,omitempty"`
	Attempts        []Attempt       `json:"attempts,omitempty"`
	Progress        *Progress       `json:"progress,omitempty"`
	// Waiting explains why a queued job is not running (e.g. no node has its plugin).
	Waiting    string    `json:"waiting,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
}

// JobList answers GET /v1/jobs.
type JobList struct {
	Jobs  []Job  `json:"jobs"`
	Index uint64 `json:"index"`
	// Total is the number of jobs that matched before offset and limit
	// (set when paging or filtering by plugin, search or since).
	Total *int `json:"total,omitempty"`
	// NextCursor, when set, fetches the next page: pass it as ?cursor=
	// with the same filters. Paging by cursor returns every job that
	// existed at the first page exactly once, whatever is submitted
	// between pages.
	NextCursor string `json:"next_cursor,omitempty"`
}

// JobQuery selects jobs for GET /v1/jobs. Zero fields match everything.
type JobQuery struct {
	Queue  string
	State  string
	Plugin string
	// Since keeps jobs created at or after it.
	Since time.Time
	// Limit caps the page (0: no cap).
	Limit int
	// Cursor continues from a previous page's NextCursor.
	Cursor string
}

// BulkRequest is the body of POST /v1/jobs/retry and POST /v1/jobs/cancel:
// a filter of jobs (empty fields match everything) and whether to only
// count them.
type BulkRequest struct {
	Queue  string `json:"queue,omitempty"`
	State  string `json:"state,omitempty"`
	Plugin string `json:"plugin,omitempty"`
	// OlderThan keeps jobs created more than this long ago.
	OlderThan Duration `json:"older_than,omitempty"`
	// DryRun counts the matching jobs and changes nothing.
	DryRun bool `json:"dry_run,omitempty"`
}

// BulkResult answers a bulk retry or cancel.
type BulkResult struct {
	// Count is how many jobs were retried or cancelled (with DryRun: how
	// many match now).
	Count  int  `json:"count"`
	DryRun bool `json:"dry_run,omitempty"`
	// Entries is how many raft entries the operation took (0 for a dry
	// run).
	Entries int `json:"entries"`
	// Index is the raft index of the last entry (of the read for a dry
	// run).
	Index uint64 `json:"index"`
}

// Queue answers one entry of GET /v1/queues.
type Queue struct {
	Name        string         `json:"name"`
	Paused      bool           `json:"paused"`
	Concurrency int            `json:"concurrency"`
	MaxAttempts int            `json:"max_attempts"`
	Retention   Duration       `json:"retention"`
	Counts      map[string]int `json:"counts"`
	// Rate is the queue's rate limit ("100/s"; absent without one),
	// Burst its bucket size, Tokens the tokens in the bucket now and
	// NextToken when the next whole token comes (absent while one is
	// available).
	Rate      string    `json:"rate,omitempty"`
	Burst     int64     `json:"burst,omitempty"`
	Tokens    *float64  `json:"tokens,omitempty"`
	NextToken time.Time `json:"next_token,omitzero"`
}

// QueueRate is the body of PUT /v1/queues/{name}/rate: Rate "N/s", "N/m"
// or "N/h" ("0" or "" removes the limit) and Burst (default 1).
type QueueRate struct {
	Rate  string `json:"rate"`
	Burst int64  `json:"burst,omitempty"`
}

// Plan answers POST /v1/jobs/plan: what would happen to the job if it
// were submitted now. Nothing is written.
type Plan struct {
	Queue  string `json:"queue"`
	Plugin string `json:"plugin"`
	// RunnableNow is true when some node could take the job now and
	// nothing in its queue holds it back (jobs ahead aside).
	RunnableNow bool `json:"runnable_now"`
	// RunAt is when a delayed job would become queued.
	RunAt time.Time `json:"run_at,omitzero"`
	// Nodes lists every alive node: could it run the job, and if not why.
	Nodes []PlanNode `json:"nodes"`
	// Reasons say what holds the job back apart from the nodes: its delay,
	// and in its queue a pause, the concurrency cap or the rate limit;
	// one line each.
	Reasons []string `json:"reasons,omitempty"`
	// Ahead is the number of queued jobs of the queue that go first (the
	// same or a higher priority); AheadSamePlugin those of the plugin.
	Ahead           int `json:"ahead"`
	AheadSamePlugin int `json:"ahead_same_plugin"`
	// Warnings: no node has the plugin, no node matches.
	Warnings []string `json:"warnings,omitempty"`
	Index    uint64   `json:"index"`
}

// PlanNode is one node in a Plan.
type PlanNode struct {
	Node     string `json:"node"`
	Eligible bool   `json:"eligible"`
	// Reason says why an ineligible node cannot run the job.
	Reason string `json:"reason,omitempty"`
}

// QueueList answers GET /v1/queues.
type QueueList struct {
	Queues []Queue `json:"queues"`
	Index  uint64  `json:"index"`
}

// Member is one Serf member in GET /v1/members.
type Member struct {
	Name   string            `json:"name"`
	Addr   string            `json:"addr"`
	Status string            `json:"status"`
	Tags   map[string]string `json:"tags"`
}

// RaftServer is one server of the raft configuration.
type RaftServer struct {
	ID      string `json:"id"`
	Node    string `json:"node"`
	Address string `json:"address"`
	Leader  bool   `json:"leader"`
	Voter   bool   `json:"voter"`
}

// RaftConfiguration answers GET /v1/operator/raft/configuration.
type RaftConfiguration struct {
	Index   uint64       `json:"index"`
	Servers []RaftServer `json:"servers"`
}

// Leader answers GET /v1/status/leader. All fields are empty when there is
// no known leader.
type Leader struct {
	ID      string `json:"id"`
	Node    string `json:"node"`
	Address string `json:"address"`
	HTTP    string `json:"http"`
}

// Self answers GET /v1/agent/self.
type Self struct {
	Node         string            `json:"node"`
	ID           string            `json:"id"`
	State        string            `json:"state"`
	Leader       string            `json:"leader"`
	Term         uint64            `json:"term"`
	LastIndex    uint64            `json:"last_index"`
	AppliedIndex uint64            `json:"applied_index"`
	Stats        map[string]string `json:"stats"`
	Version      string            `json:"version"`
}

// Plugin is one entry of GET /v1/plugins.
type Plugin struct {
	Name        string `json:"name"`
	Version     string `json:"version,omitempty"`
	Description string `json:"description,omitempty"`
	Path        string `json:"path,omitempty"`
	Builtin     bool   `json:"builtin"`
	Status      string `json:"status"` // "starting", "ready", "restarting", "failed", "skipped"
	Error       string `json:"error,omitempty"`
	Concurrency int    `json:"concurrency"`
	Running     int    `json:"running"`
	// PID is the plugin process's ID while it runs.
	PID int `json:"pid,omitempty"`
	// Restarts counts relaunches after a crash since the agent started.
	Restarts int `json:"restarts"`
}

// PluginList answers GET /v1/plugins.
type PluginList struct {
	Node    string   `json:"node"`
	Plugins []Plugin `json:"plugins"`
}

// Error is the body of every non-2xx response.
type Error struct {
	Error string `json:"error"`
}

// Duration is a time.Duration that reads and writes as a Go duration
// string ("1m30s") and also accepts a number of nanoseconds.
type Duration time.Duration

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		*d = Duration(v)
		return nil
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil {
		return err
	}
	*d = Duration(n)
	return nil
}

// ReloadResult answers PUT /v1/agent/reload: what the reload changed.
type ReloadResult struct {
	Node string `json:"node"`
	// LogLevel is the log level in force after the reload.
	LogLevel string `json:"log_level"`
	// Started lists plugins found new in plugin_dir (or newly configured)
	// and started.
	Started []string `json:"started"`
	// Restarted lists plugins whose binary or settings changed: each is
	// replaced once its running jobs finish.
	Restarted []string `json:"restarted"`
	// Removed lists plugins gone from plugin_dir: stopped once their
	// running jobs finish.
	Removed []string `json:"removed"`
	// NeedRestart names changed options that take effect only after an
	// agent restart.
	NeedRestart []string `json:"need_restart"`
}

// JSONString encodes s as a JSON string without HTML escaping (& < > stay
// as written): how a payload or result that is not JSON is shown.
func JSONString(s string) json.RawMessage {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // cannot fail for a string
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}
