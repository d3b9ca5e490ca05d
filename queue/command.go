package queue

import "time"

// Kind identifies a command type inside an Entry.
type Kind uint8

// Command kinds. Values are part of the replicated log format: never reorder
// or reuse them. Kinds of other features are declared with them:
// 11-13 in periodic.go, 14 (SubmitDAG) in deps.go, 20-24 in acl.go.
const (
	KindInvalid      Kind = iota
	KindSubmit            // *Submit
	KindClaim             // *Claim
	KindHeartbeat         // *Heartbeat
	KindComplete          // *Complete
	KindCancel            // *Cancel
	KindRetry             // *Retry
	KindSetQueue          // *SetQueue
	KindFailNode          // *FailNode
	KindExpireLeases      // *ExpireLeases
	KindPurge             // *Purge
)

// Command is one state change. Every concrete command is a pointer to one
// of the types below; Kind reports which.
type Command interface {
	Kind() Kind
}

// Entry is the unit replicated through one raft log entry: a batch of
// commands applied in order, all with the same leader-stamped time. Batching
// many submits, claims and completions into one entry is how Corral gets its
// throughput; each command succeeds or fails on its own.
//
// Before the commands run, the FSM promotes every scheduled job whose RunAt
// is <= Now to queued, so time only ever comes from entries.
type Entry struct {
	// Now is the leader's wall clock when it built the entry.
	Now  time.Time
	Cmds []Command
}

// Result is the outcome of one command of an entry, in the same position.
// Err is nil on success; a non-nil Err means the command changed nothing.
type Result struct {
	Err error
	// Submit: one per submitted spec, in order.
	Submitted []Submitted
	// Claim: the leases granted.
	Leases []Lease
	// Heartbeat: leases the node must abort (stale token, job gone, or
	// cancel requested), with the reason.
	Abort []Abort
	// Complete: one error (or nil) per report, in order. A stale report gets
	// ErrStaleToken and changes nothing.
	Reports []error
	// Cancel, Retry: the job after the change.
	Job *Job
	// FailNode, ExpireLeases, Purge, BulkRetry, BulkCancel: how many jobs
	// were affected.
	Count int
	// BulkRetry, BulkCancel: whether more matching jobs remain, and the
	// filter the next batch sends to continue the same operation (its
	// cutoffs fixed by this batch).
	More   bool
	Resume *BulkFilter
}

// Submitted is the per-spec result of a Submit.
type Submitted struct {
	ID string
	// Existing is true when a unique_key matched and no job was created.
	Existing bool
	Err      error
}

// Submit creates jobs. IDs are assigned by the leader before replication.
type Submit struct {
	IDs   []string // one per spec, same order
	Specs []Spec
}

// Kind implements Command.
func (*Submit) Kind() Kind { return KindSubmit }

// Claim asks for up to Slots[plugin] jobs for each plugin a node has free
// capacity for. Jobs whose constraints don't match Tags are skipped; paused
// queues and queues at their concurrency limit give nothing. Each granted
// job gets a lease with a fresh fencing token that expires at Now+LeaseTTL.
type Claim struct {
	Node     string
	Tags     map[string]string
	Slots    map[string]int
	LeaseTTL time.Duration
}

// Kind implements Command.
func (*Claim) Kind() Kind { return KindClaim }

// Lease is a job handed to a node by a Claim.
type Lease struct {
	Job   *Job
	Token uint64
}

// LeaseRef names one lease a node holds.
type LeaseRef struct {
	ID    string
	Token uint64
}

// Heartbeat renews the node's listed leases to Now+LeaseTTL. Leases with a
// stale token, of jobs that no longer run there, or whose job has a cancel
// request are returned in Result.Abort.
type Heartbeat struct {
	Node     string
	Leases   []LeaseRef
	LeaseTTL time.Duration
}

// Kind implements Command.
func (*Heartbeat) Kind() Kind { return KindHeartbeat }

// Abort tells a node to stop running a lease.
type Abort struct {
	ID     string
	Token  uint64
	Reason string
}

// Report is the outcome of one attempt, sent by the node that held the lease.
type Report struct {
	ID    string
	Token uint64
	Node  string
	// Outcome is OutcomeSucceeded, OutcomeFailed or OutcomeCancelled.
	Outcome Outcome
	Result  []byte
	Error   string
	// NonRetryable fails the job at once, whatever attempts are left.
	NonRetryable bool
}

// Complete applies a batch of reports. Each is checked against the job's
// current lease: a stale token changes nothing (fencing).
type Complete struct {
	Reports []Report
}

// Kind implements Command.
func (*Complete) Kind() Kind { return KindComplete }

// Cancel cancels a job: a scheduled, queued or blocked job ends cancelled at once; a
// running job gets CancelRequested and ends cancelled when its node reports
// (or its lease ends). Cancelling a terminal job is ErrTerminal.
type Cancel struct {
	ID string
}

// Kind implements Command.
func (*Cancel) Kind() Kind { return KindCancel }

// Retry puts a failed or cancelled job back to queued, at the back of its
// priority's FIFO order (or to blocked while a parent has not succeeded;
// refused while a parent is failed or cancelled), with one more attempt: MaxAttempts is raised to
// Attempt+1 when the job had used them all (the attempt count and history
// are kept). Other states are ErrNotRetryable.
type Retry struct {
	ID string
}

// Kind implements Command.
func (*Retry) Kind() Kind { return KindRetry }

// QueueConfig is the replicated configuration of a named queue.
type QueueConfig struct {
	// Paused queues hand out no jobs; submits still land.
	Paused bool
	// Concurrency caps running jobs of the queue cluster-wide; 0 = no cap.
	Concurrency int
	// MaxAttempts is the default for jobs that don't set one; 0 = 25.
	MaxAttempts int
	// Retention is how long terminal jobs are kept; 0 = 24h.
	Retention time.Duration
	// BackoffBase, if set, replaces the 15s constant of the retry formula.
	BackoffBase time.Duration
}

// SetQueue creates or updates a queue. Fields selects which fields change,
// so a pause does not clobber a concurrency limit set elsewhere.
type SetQueue struct {
	Name   string
	Fields QueueField
	Config QueueConfig
}

// Kind implements Command.
func (*SetQueue) Kind() Kind { return KindSetQueue }

// QueueField is a bit set of QueueConfig fields.
type QueueField uint8

// Queue fields for SetQueue.Fields.
const (
	FieldPaused QueueField = 1 << iota
	FieldConcurrency
	FieldMaxAttempts
	FieldRetention
	FieldBackoffBase
)

// FailNode ends every lease held by Node as a lost attempt, in one
// command. The attempt counts: a job with attempts left goes back to queued
// at once (no backoff, at the back of its priority's FIFO order), one out
// of attempts fails, one with a cancel request ends cancelled. Used when
// Serf declares the node failed or it left.
type FailNode struct {
	Node   string
	Reason string
}

// Kind implements Command.
func (*FailNode) Kind() Kind { return KindFailNode }

// ExpireLeases ends every lease whose expiry is <= Now as a lost attempt.
type ExpireLeases struct{}

// Kind implements Command.
func (*ExpireLeases) Kind() Kind { return KindExpireLeases }

// Purge deletes up to Limit terminal jobs whose queue retention has passed.
type Purge struct {
	Limit int
}

// Kind implements Command.
func (*Purge) Kind() Kind { return KindPurge }
