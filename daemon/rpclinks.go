package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/corral-dev/corral/daemon/api"
	"github.com/corral-dev/corral/daemon/rpc"
	"github.com/corral-dev/corral/daemon/server"
	"github.com/corral-dev/corral/daemon/worker"
	"github.com/corral-dev/corral/discovery"
	"github.com/corral-dev/corral/queue"
	autopilot "github.com/hashicorp/raft-autopilot"
)

// The node plane's services: what this node answers over rpc, and the
// client side of each call.

const (
	// progressTimeout bounds the call to the node running a job.
	progressTimeout = 500 * time.Millisecond
	// progressMinAge is how long an attempt must have run before another
	// node asks its node for progress: short jobs (most of them) finish
	// before reporting any.
	progressMinAge = 250 * time.Millisecond
	// statsTimeout bounds autopilot's call to a server's stats.
	statsTimeout = time.Second
	// maxSubmitWait caps the wait of a forwarded submit-and-wait.
	maxSubmitWait = 5 * time.Minute
)

func init() {
	rpc.RegisterError("not_leader", server.ErrNotLeader)
	rpc.RegisterError("no_leader", server.ErrNoLeader)
	rpc.RegisterError("leadership_lost", server.ErrLeadershipLost)
	rpc.RegisterError("shutting_down", server.ErrShuttingDown)
}

// registerRPC installs this node's rpc handlers.
func (a *Agent) registerRPC() {
	a.rpcSrv.Handle(rpc.MethodForward, rpc.Unary(func(ctx context.Context, req *rpc.ApplyRequest) (*rpc.ApplyResponse, error) {
		cmds, err := req.Commands()
		if err != nil {
			return nil, err
		}
		results, index, err := a.server.ApplyForwarded(ctx, cmds)
		if err != nil {
			return nil, err
		}
		out := &rpc.ApplyResponse{Index: index, Results: make([]rpc.Result, len(results))}
		for i, r := range results {
			out.Results[i] = rpc.FromResult(r)
			if req.Wait > 0 {
				out.Jobs = append(out.Jobs, a.server.AwaitSubmitted(ctx, r, min(req.Wait, maxSubmitWait))...)
			}
		}
		return out, nil
	}))
	a.rpcSrv.Handle(rpc.MethodDispatch, func(ctx context.Context, s *rpc.Stream) error {
		return a.server.Dispatch(ctx, s)
	})
	a.rpcSrv.Handle(rpc.MethodRead, rpc.Unary(func(ctx context.Context, req *rpc.ReadRequest) (*rpc.ReadResponse, error) {
		j, index, err := a.server.ReadJobLocal(ctx, req.ID)
		if err != nil {
			return nil, err
		}
		return &rpc.ReadResponse{Job: j, Index: index}, nil
	}))
	a.rpcSrv.Handle(rpc.MethodProgress, rpc.Unary(func(ctx context.Context, req *rpc.ProgressRequest) (*rpc.ProgressResponse, error) {
		pct, msg, ok := a.worker.Progress(req.ID)
		return &rpc.ProgressResponse{OK: ok, Percent: pct, Message: msg}, nil
	}))
	a.rpcSrv.Handle(rpc.MethodJobLogs, func(ctx context.Context, s *rpc.Stream) error {
		var req rpc.LogsRequest
		if err := s.Recv(&req); err != nil {
			return err
		}
		w := &chunkWriter{s: s}
		return a.worker.CopyLog(ctx, a.store, req.ID, req.Attempt, req.Follow, w, func() {})
	})
	a.rpcSrv.Handle(rpc.MethodStats, rpc.Unary(func(ctx context.Context, _ *rpc.StatsRequest) (*rpc.StatsResponse, error) {
		st, err := discovery.LocalStats(a.node.Raft)
		if err != nil {
			return nil, err
		}
		return &rpc.StatsResponse{LastContact: st.LastContact, LastTerm: st.LastTerm, LastIndex: st.LastIndex}, nil
	}))
}

// chunkWriter sends what is written as LogChunk frames.
type chunkWriter struct{ s *rpc.Stream }

func (w *chunkWriter) Write(p []byte) (int, error) {
	if err := w.s.Send(&rpc.LogChunk{Data: p}); err != nil {
		return 0, err
	}
	return len(p), nil
}

// forwarder is the server's way to the leader.
type forwarder struct{ pool *rpc.Pool }

// Apply implements server.Forwarder.
func (f forwarder) Apply(ctx context.Context, addr string, cmds []queue.Command, wait time.Duration) ([]queue.Result, uint64, []*queue.Job, error) {
	req, err := rpc.NewApplyRequest(cmds)
	if err != nil {
		return nil, 0, nil, err
	}
	req.Wait = wait
	var resp rpc.ApplyResponse
	if err := f.pool.Call(ctx, addr, rpc.MethodForward, req, &resp); err != nil {
		if !rpc.MayHaveReached(err) {
			// Nothing left this node: safe to send again.
			return nil, 0, nil, fmt.Errorf("%w: %w", server.ErrNotLeader, err)
		}
		return nil, 0, nil, err
	}
	out := make([]queue.Result, len(resp.Results))
	for i := range resp.Results {
		out[i] = resp.Results[i].Result()
	}
	return out, resp.Index, resp.Jobs, nil
}

// ReadJob implements server.Forwarder.
func (f forwarder) ReadJob(ctx context.Context, addr, id string) (*queue.Job, uint64, error) {
	var resp rpc.ReadResponse
	if err := f.pool.Call(ctx, addr, rpc.MethodRead, &rpc.ReadRequest{ID: id}, &resp); err != nil {
		var re *rpc.RemoteError
		if !errors.As(err, &re) {
			// The leader could not be reached (or went away mid-read): a
			// read changed nothing, so this is "no leader", safe to retry.
			return nil, 0, fmt.Errorf("consistent read from the leader at %s: %w: %w", addr, server.ErrNoLeader, err)
		}
		return nil, 0, err
	}
	return resp.Job, resp.Index, nil
}

// leaderLink opens the worker's dispatch stream to the current leader:
// in-process when this node leads, over the node plane otherwise. The
// stream is closed as soon as another leader (or an election) is known.
type leaderLink struct{ a *Agent }

// OpenDispatch implements worker.Leader.
func (l leaderLink) OpenDispatch(ctx context.Context) (worker.Stream, error) {
	addr, id, changed, err := l.a.server.WaitLeader(ctx)
	if err != nil {
		return nil, err
	}
	sctx, cancel := server.BindLeader(ctx, changed)
	if id == l.a.nodeID {
		// This node leads: its worker talks to its server in-process, the
		// same messages without the wire.
		worker, leader := rpc.Pipe(sctx)
		go func() {
			defer leader.Close()
			if err := l.a.server.Dispatch(leader.Context(), leader); err != nil && leader.Context().Err() == nil {
				l.a.logger.Named("server").Debug("local dispatch stream ended", "error", err)
			}
		}()
		return &boundStream{Stream: worker, cancel: cancel}, nil
	}
	st, err := l.a.pool.Open(sctx, addr, rpc.MethodDispatch)
	if err != nil {
		cancel()
		return nil, err
	}
	return &boundStream{Stream: st, cancel: cancel}, nil
}

// boundStream releases its leader binding when closed.
type boundStream struct {
	worker.Stream
	cancel context.CancelFunc
}

func (s *boundStream) Close() error {
	s.cancel()
	return s.Stream.Close()
}

// jobAccess reaches the node that runs or ran a job, for the HTTP API.
type jobAccess struct{ a *Agent }

// Progress implements httpapi.Jobs.
func (j jobAccess) Progress(ctx context.Context, node, id string) *api.Progress {
	a := j.a
	if node == a.cfg.NodeName {
		if pct, msg, ok := a.worker.Progress(id); ok {
			return &api.Progress{Percent: pct, Message: msg}
		}
		return nil
	}
	if job, ok := a.store.Get(id); ok {
		if n := len(job.Attempts); n > 0 && time.Since(job.Attempts[n-1].Started) < progressMinAge {
			return nil
		}
	}
	addr, ok := a.raftAddrOfNode(node)
	if !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, progressTimeout)
	defer cancel()
	var resp rpc.ProgressResponse
	if err := a.pool.Call(ctx, addr, rpc.MethodProgress, &rpc.ProgressRequest{ID: id}, &resp); err != nil || !resp.OK {
		return nil
	}
	return &api.Progress{Percent: resp.Percent, Message: resp.Message}
}

// Log implements httpapi.Jobs.
func (j jobAccess) Log(ctx context.Context, node, id string, attempt int, follow bool, w io.Writer, flush func()) error {
	a := j.a
	if node == a.cfg.NodeName {
		return a.worker.CopyLog(ctx, a.store, id, attempt, follow, w, flush)
	}
	addr, ok := a.raftAddrOfNode(node)
	if !ok {
		return fmt.Errorf("node %s is not reachable", node)
	}
	st, err := a.pool.Open(ctx, addr, rpc.MethodJobLogs)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.Send(&rpc.LogsRequest{ID: id, Attempt: attempt, Follow: follow}); err != nil {
		return err
	}
	for {
		var c rpc.LogChunk
		if err := st.Recv(&c); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if _, err := w.Write(c.Data); err != nil {
			return nil // the reader went away
		}
		flush()
	}
}

// fetchStats asks a server for its raft stats, for autopilot's health
// checks.
func (a *Agent) fetchStats(ctx context.Context, m discovery.Member) (*autopilot.ServerStats, error) {
	if m.Tags[discovery.TagID] == a.nodeID {
		return discovery.LocalStats(a.node.Raft)
	}
	addr := m.Tags[discovery.TagRaft]
	if addr == "" {
		return nil, fmt.Errorf("member %s advertises no raft address", m.Name)
	}
	ctx, cancel := context.WithTimeout(ctx, statsTimeout)
	defer cancel()
	var resp rpc.StatsResponse
	if err := a.pool.Call(ctx, addr, rpc.MethodStats, &rpc.StatsRequest{}, &resp); err != nil {
		return nil, fmt.Errorf("stats of %s: %w", m.Name, err)
	}
	return &autopilot.ServerStats{LastContact: resp.LastContact, LastTerm: resp.LastTerm, LastIndex: resp.LastIndex}, nil
}
