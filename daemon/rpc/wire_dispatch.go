package rpc

import (
	"fmt"
	"time"

	"github.com/corral-dev/corral/queue"
)

// The dispatch stream (MethodDispatch): one long-lived stream from each
// worker to the leader. The worker opens it with a Hello, then announces
// free slots (Credit), renews its leases (Heartbeat) and reports finished
// attempts (Reports) in Up messages; the leader pushes leases and aborts,
// and acknowledges reports once they are committed, in Down messages. A
// leadership change ends the stream; the worker reconnects to the new
// leader with a new Hello that re-announces its running leases.

// Bounds on what a worker may send, checked by the leader before anything
// reaches raft.
const (
	// MaxLeasesPerMessage bounds the leases of one Hello or Heartbeat.
	MaxLeasesPerMessage = 100_000
	// MaxReportsPerMessage bounds the reports of one Up.
	MaxReportsPerMessage = 4096
	// MaxPluginsPerCredit bounds the plugins named in one Credit.
	MaxPluginsPerCredit = 1024
)

// Hello opens a dispatch stream.
type Hello struct {
	// Node is the worker's node name.
	Node string
	// Tags are the node's tags, matched against job constraints.
	Tags map[string]string
	// Restarted is set on the first stream after the agent started: the
	// leader first ends the leases of the node's previous run.
	Restarted bool
	// Running are the leases the worker holds: a new leader renews them
	// and answers with aborts for those it must stop.
	Running []queue.LeaseRef
}

// Validate checks a Hello's bounds.
func (h *Hello) Validate() error {
	switch {
	case h.Node == "":
		return fmt.Errorf("%w: dispatch hello without a node name", ErrBadRequest)
	case len(h.Running) > MaxLeasesPerMessage:
		return fmt.Errorf("%w: %d leases in one hello (at most %d)", ErrBadRequest, len(h.Running), MaxLeasesPerMessage)
	}
	return nil
}

// Up is a message from a worker to the leader; any of its parts may be set.
type Up struct {
	// Credit announces the worker's free slots.
	Credit *Credit
	// Heartbeat renews these leases (non-nil, possibly empty, to send one).
	Heartbeat []queue.LeaseRef
	// Reports are finished attempts, acknowledged with Seq once committed.
	Reports []queue.Report
	Seq     uint64
}

// Validate checks an Up's bounds.
func (u *Up) Validate() error {
	switch {
	case len(u.Heartbeat) > MaxLeasesPerMessage:
		return fmt.Errorf("%w: %d leases in one heartbeat (at most %d)", ErrBadRequest, len(u.Heartbeat), MaxLeasesPerMessage)
	case len(u.Reports) > MaxReportsPerMessage:
		return fmt.Errorf("%w: %d reports in one message (at most %d)", ErrBadRequest, len(u.Reports), MaxReportsPerMessage)
	case u.Credit != nil && (len(u.Credit.Free) > MaxPluginsPerCredit || len(u.Credit.Seen) > MaxPluginsPerCredit || len(u.Credit.Released) > MaxPluginsPerCredit):
		return fmt.Errorf("%w: credit names more than %d plugins", ErrBadRequest, MaxPluginsPerCredit)
	}
	return nil
}

// Credit announces a worker's free slots per plugin. Seen counts, per
// plugin, the leases the worker had received on this stream when it
// computed Free, and Released the slots that acks on this stream had freed
// by then, so the leader accounts for what crossed on the way:
// free now = Free[p] - (leases sent for p - Seen[p]) + (slots freed by
// acks sent - Released[p]).
type Credit struct {
	Free     map[string]int
	Seen     map[string]uint64
	Released map[string]uint64
}

// Down is a message from the leader to a worker; any of its parts may be
// set.
type Down struct {
	// Welcome answers the Hello: the restart and the re-announced leases
	// have been handled.
	Welcome bool
	// Leases are jobs to run now.
	Leases []Lease
	// Abort lists leases to stop (cancelled, lost, gone).
	Abort []queue.Abort
	// Acked is the Seq of a report batch that is committed, with one
	// entry per report in Rejected ("" accepted, else why not).
	Acked    uint64
	Rejected []string
}

// Lease is a job leased to a worker, with what it needs to run it.
type Lease struct {
	ID      string
	Token   uint64
	Attempt int
	Queue   string
	Plugin  string
	Payload []byte
	Timeout time.Duration
}
