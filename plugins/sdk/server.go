package sdk

import (
	"context"
	"fmt"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/corral-dev/corral/plugins/proto"
	"github.com/corral-dev/corral/plugins/runners"
)

// CancelGrace is how long Worker.Run may keep running after its context is
// done. Past it the SDK exits the plugin process with ExitHung, which kills
// the stuck job; the host then restarts the plugin.
const CancelGrace = 3 * time.Second

// ExitHung is the exit code of a plugin that killed itself because a job
// ignored cancellation; ExitOrphaned that of a plugin whose host died.
const (
	ExitHung     = 70
	ExitOrphaned = 71
)

// server implements proto.WorkerServer over a Worker.
type server struct {
	proto.UnimplementedWorkerServer
	impl   Worker
	api    int // the protocol version served
	runs   *runTracker
	logger hclog.Logger
	// runners runs Session jobs on reused goroutines.
	runners runners.Pool
}

// Info implements proto.WorkerServer.
func (s *server) Info(context.Context, *proto.Empty) (*proto.InfoResponse, error) {
	info := s.impl.Info()
	return &proto.InfoResponse{
		Name:        info.Name,
		Version:     info.Version,
		Description: info.Description,
		ApiVersion:  uint32(s.api),
	}, nil
}

// Configure implements proto.WorkerServer.
func (s *server) Configure(_ context.Context, req *proto.ConfigureRequest) (*proto.Empty, error) {
	if c, ok := s.impl.(Configurer); ok {
		if err := c.Configure(req.GetConfigJson()); err != nil {
			return nil, status.Error(codes.InvalidArgument, err.Error())
		}
	}
	return &proto.Empty{}, nil
}

// outcome is what Worker.Run returned.
type outcome struct {
	result []byte
	err    error
}

// Run implements proto.WorkerServer: it runs the job in its own goroutine so
// a job that ignores cancellation can be detected and the process ended.
func (s *server) Run(req *proto.RunRequest, stream grpc.ServerStreamingServer[proto.RunEvent]) error {
	ctx, done := s.runs.begin(stream.Context())
	defer done()
	if req.GetTimeoutMs() > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(req.GetTimeoutMs())*time.Millisecond)
		defer cancel()
	}
	job := jobOf(req)
	rep := &streamReporter{stream: stream}

	results := make(chan outcome, 1)
	go func() { results <- s.runWorker(ctx, job, rep) }()

	var out outcome
	select {
	case out = <-results:
	case <-ctx.Done():
		select {
		case out = <-results:
		case <-time.After(CancelGrace):
			s.logger.Error("job ignored cancellation; exiting so the host restarts the plugin",
				"job", job.ID, "grace", CancelGrace)
			os.Exit(ExitHung)
		}
	}
	return rep.finish(out)
}

// jobOf converts a request to the Job handed to Worker.Run.
func jobOf(req *proto.RunRequest) Job {
	return Job{
		ID:      req.GetJobId(),
		Attempt: int(req.GetAttempt()),
		Queue:   req.GetQueue(),
		Payload: req.GetPayload(),
	}
}

// runWorker calls the worker's Run, turning a panic into the job's error.
func (s *server) runWorker(ctx context.Context, job Job, rep Reporter) (out outcome) {
	defer func() {
		if p := recover(); p != nil {
			s.logger.Error("worker panicked", "job", job.ID, "panic", p, "stack", string(debug.Stack()))
			out = outcome{err: fmt.Errorf("plugin panicked: %v", p)}
		}
	}()
	res, err := s.impl.Run(ctx, job, rep)
	return outcome{result: res, err: err}
}

// streamReporter sends Reporter calls as RunEvents; grpc streams are not
// safe for concurrent Send, so a mutex serialises them.
type streamReporter struct {
	mu     sync.Mutex
	stream grpc.ServerStreamingServer[proto.RunEvent]
	closed bool
}

func (r *streamReporter) send(ev *proto.RunEvent) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	return r.stream.Send(ev)
}

// Log implements Reporter.
func (r *streamReporter) Log(line string) { r.Output(StreamPlugin, line) }

// Logf implements Reporter.
func (r *streamReporter) Logf(format string, args ...any) { r.Log(fmt.Sprintf(format, args...)) }

// Output implements Reporter.
func (r *streamReporter) Output(stream Stream, line string) {
	_ = r.send(&proto.RunEvent{Event: &proto.RunEvent_Log{
		Log: &proto.Log{Stream: stream.String(), Line: line},
	}})
}

// Progress implements Reporter.
func (r *streamReporter) Progress(percent float64, msg string) {
	percent = max(0, min(100, percent))
	_ = r.send(&proto.RunEvent{Event: &proto.RunEvent_Progress{
		Progress: &proto.Progress{Percent: percent, Message: msg},
	}})
}

// finish sends the final event and drops any later Reporter calls.
func (r *streamReporter) finish(out outcome) error {
	var ev *proto.RunEvent
	if out.err != nil {
		ev = &proto.RunEvent{Event: &proto.RunEvent_Error{Error: &proto.Error{
			Message:      out.err.Error(),
			NonRetryable: IsNonRetryable(out.err),
		}}}
	} else {
		ev = &proto.RunEvent{Event: &proto.RunEvent_Result{Result: &proto.Result{Data: out.result}}}
	}
	err := r.send(ev)
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	return err
}
