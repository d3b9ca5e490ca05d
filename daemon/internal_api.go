package daemon

import (
	"context"
	"net/http"
	"time"

	"github.com/corral-dev/corral/queue"
	"github.com/hashicorp/raft"
)

// The node-to-leader protocol of the dispatcher. These endpoints live under
// /v1/internal/ and are served by the leader only (followers answer 503 and
// the dispatcher re-resolves the leader).

// pollRequest asks the leader for work (long poll).
type pollRequest struct {
	Node string            `json:"node"`
	Tags map[string]string `json:"tags,omitempty"`
	// Slots is the free capacity per plugin.
	Slots map[string]int `json:"slots"`
	// Running lists the leases the node holds, so the leader can tell it at
	// once which to abort (cancel requested, lease lost).
	Running []queue.LeaseRef `json:"running,omitempty"`
	// WaitMS bounds the long poll.
	WaitMS int64 `json:"wait_ms"`
}

// pollResponse carries granted leases and aborts.
type pollResponse struct {
	Leases []wireLease   `json:"leases,omitempty"`
	Abort  []queue.Abort `json:"abort,omitempty"`
}

// wireLease is a lease with the job fields a node needs to run it.
type wireLease struct {
	ID      string        `json:"id"`
	Token   uint64        `json:"token"`
	Attempt int           `json:"attempt"`
	Queue   string        `json:"queue"`
	Plugin  string        `json:"plugin"`
	Payload []byte        `json:"payload,omitempty"`
	Timeout time.Duration `json:"timeout"`
}

// heartbeatRequest renews a node's leases. Restarted asks the leader to
// first end every lease the node held before it restarted.
type heartbeatRequest struct {
	Node      string           `json:"node"`
	Leases    []queue.LeaseRef `json:"leases"`
	Restarted bool             `json:"restarted,omitempty"`
}

type heartbeatResponse struct {
	Abort []queue.Abort `json:"abort,omitempty"`
}

// completeRequest reports finished attempts.
type completeRequest struct {
	Node    string         `json:"node"`
	Reports []queue.Report `json:"reports"`
}

// completeResponse has one error string ("" = accepted) per report.
type completeResponse struct {
	Errors []string `json:"errors"`
}

// isLeader reports whether this node leads (the dispatcher then calls the
// leader side in-process).
func (a *Agent) isLeader() bool { return a.node.Raft.State() == raft.Leader }

// internalCall serves one call of the node-to-leader protocol over HTTP:
// a JSON request body of at most limit bytes in, call's answer out.
func internalCall[Req, Resp any](limit int64, call func(context.Context, Req) (Resp, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req Req
		if err := decodeBody(w, r, limit, &req); err != nil {
			writeError(w, err)
			return
		}
		resp, err := call(r.Context(), req)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, resp, 0)
	}
}

// internalOnLeader rejects internal calls on a follower.
func (a *Agent) internalOnLeader(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if a.node.Raft.State() != raft.Leader {
			writeError(w, ErrNotLeader)
			return
		}
		h(w, r)
	}
}

// poll claims jobs for a node's free slots, or waits for work (or an
// abort of one of its leases) up to WaitMS. ctx ending only ends the wait:
// a claim once issued is answered, as its leases are real.
func (a *Agent) poll(ctx context.Context, req pollRequest) (pollResponse, error) {
	if req.Node == "" {
		return pollResponse{}, badRequest("poll without node name")
	}
	wait := min(time.Duration(req.WaitMS)*time.Millisecond, time.Minute)
	timer := time.NewTimer(wait)
	defer timer.Stop()
	claim := &queue.Claim{
		Node: req.Node, Tags: req.Tags, Slots: req.Slots,
		LeaseTTL: a.cfg.Limits.LeaseTTL, // server config only: a node cannot ask for a longer lease
	}
	hasSlots := false
	for _, n := range req.Slots {
		hasSlots = hasSlots || n > 0
	}
	recheck := time.NewTicker(time.Second)
	defer recheck.Stop()
	for {
		if !a.isLeader() {
			// Leadership moved while the poll waited: the node asks the
			// new leader.
			return pollResponse{}, ErrNotLeader
		}
		_, changed := a.store.Watch()
		resp := pollResponse{Abort: a.abortsFor(req.Node, req.Running)}
		var parked *applyReq
		if hasSlots {
			if a.store.Claimable(req.Tags, req.Slots) {
				// Leases are granted even if the caller is gone: they
				// expire and the jobs are retried.
				res, _, err := a.applier.Apply(context.WithoutCancel(ctx), claim)
				if err = firstErr(err, res.Err); err != nil {
					return pollResponse{}, err
				}
				resp.Leases = wireLeases(res.Leases)
			} else if len(resp.Abort) == 0 {
				parked = &applyReq{cmd: claim, done: make(chan applyDone, 1)}
				a.applier.parked.park(parked)
			}
		}
		if len(resp.Leases) > 0 || len(resp.Abort) > 0 {
			return resp, nil
		}
		var timedOut bool
		select {
		case d := <-parkedDone(parked):
			parked = nil
			if resp, err, done := parkedOutcome(d); done {
				return resp, err
			}
		case <-changed:
		case <-recheck.C:
		case <-timer.C:
			timedOut = true
		case <-ctx.Done():
			timedOut = true
		}
		if parked != nil && !a.applier.parked.unpark(parked) {
			// The applier already put the claim in an entry: its leases
			// are real and must reach the node.
			if resp, err, done := parkedOutcome(<-parked.done); done {
				return resp, err
			}
		}
		if timedOut {
			return pollResponse{}, nil
		}
	}
}

// parkedOutcome turns the outcome of a parked claim into the poll's answer
// when it is an error or granted leases; done is false when the claim got
// nothing and the poll should keep waiting.
func parkedOutcome(d applyDone) (resp pollResponse, err error, done bool) {
	if err := firstErr(d.err, d.result.Err); err != nil {
		return pollResponse{}, err, true
	}
	if len(d.result.Leases) > 0 {
		return pollResponse{Leases: wireLeases(d.result.Leases)}, nil, true
	}
	return pollResponse{}, nil, false
}

// parkedDone returns the result channel of a parked claim, or nil (which
// blocks forever in a select) when nothing is parked.
func parkedDone(req *applyReq) <-chan applyDone {
	if req == nil {
		return nil
	}
	return req.done
}

// wireLeases converts granted leases for the node.
func wireLeases(leases []queue.Lease) []wireLease {
	out := make([]wireLease, 0, len(leases))
	for _, l := range leases {
		out = append(out, wireLease{
			ID: l.Job.ID, Token: l.Token, Attempt: l.Job.Attempt, Queue: l.Job.Queue,
			Plugin: l.Job.Plugin, Payload: l.Job.Payload, Timeout: l.Job.Timeout,
		})
	}
	return out
}

// abortsFor checks a node's leases against the local (leader) state
// without writing: a lease whose job was cancelled, re-leased or removed
// must stop.
func (a *Agent) abortsFor(node string, leases []queue.LeaseRef) []queue.Abort {
	var out []queue.Abort
	for _, l := range leases {
		j, ok := a.store.Get(l.ID)
		switch {
		case !ok:
			out = append(out, queue.Abort{ID: l.ID, Token: l.Token, Reason: "job no longer exists"})
		case j.State != queue.StateRunning || j.Token != l.Token || j.Node != node:
			out = append(out, queue.Abort{ID: l.ID, Token: l.Token, Reason: "lease lost: a newer attempt owns the job"})
		case j.CancelRequested:
			out = append(out, queue.Abort{ID: l.ID, Token: l.Token, Reason: "cancelled"})
		}
	}
	return out
}

// heartbeat renews a node's leases; a restarted node first has the leases
// of its previous run ended.
func (a *Agent) heartbeat(ctx context.Context, req heartbeatRequest) (heartbeatResponse, error) {
	ctx = context.WithoutCancel(ctx)
	if req.Restarted {
		res, _, err := a.applier.Apply(ctx, &queue.FailNode{Node: req.Node, Reason: "node restarted"})
		if err = firstErr(err, res.Err); err != nil {
			return heartbeatResponse{}, err
		}
	}
	res, _, err := a.applier.Apply(ctx, &queue.Heartbeat{
		Node: req.Node, Leases: req.Leases, LeaseTTL: a.cfg.Limits.LeaseTTL,
	})
	if err = firstErr(err, res.Err); err != nil {
		return heartbeatResponse{}, err
	}
	return heartbeatResponse{Abort: res.Abort}, nil
}

// complete applies a node's reports; a rejected (stale) report gets its
// reason in the answer and changes nothing.
func (a *Agent) complete(ctx context.Context, req completeRequest) (completeResponse, error) {
	reports := make([]queue.Report, len(req.Reports))
	for i, r := range req.Reports {
		r.Node = req.Node
		reports[i] = r
	}
	res, _, err := a.applier.Apply(context.WithoutCancel(ctx), &queue.Complete{Reports: reports})
	if err = firstErr(err, res.Err); err != nil {
		return completeResponse{}, err
	}
	out := completeResponse{Errors: make([]string, len(reports))}
	for i, e := range res.Reports {
		if e != nil && i < len(out.Errors) {
			out.Errors[i] = e.Error()
		}
	}
	return out, nil
}
