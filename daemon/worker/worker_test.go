package worker

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/corral-dev/corral/daemon/rpc"
	"github.com/corral-dev/corral/plugins/host"
	"github.com/corral-dev/corral/queue"
)

// fakePlugins is one plugin "p" with two slots. A payload of "block"
// runs until cancelled; anything else is echoed as the result.
type fakePlugins struct{}

func (fakePlugins) Plugins() []host.Status {
	return []host.Status{{Name: "p", Status: host.StateReady, Concurrency: 2}}
}

func (fakePlugins) Run(ctx context.Context, plugin string, req host.RunRequest, r host.Reporter) ([]byte, error) {
	r.Log("stdout", "running "+req.JobID)
	r.Progress(50, "half")
	if string(req.Payload) == "block" {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return req.Payload, nil
}

// fakeLeader hands the worker streams whose other end the test plays.
type fakeLeader struct {
	streams chan *fakeStream
}

func (l *fakeLeader) OpenDispatch(ctx context.Context) (Stream, error) {
	s := &fakeStream{up: make(chan any, 64), down: make(chan *rpc.Down, 64), closed: make(chan struct{})}
	select {
	case l.streams <- s:
		return s, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

type fakeStream struct {
	up     chan any
	down   chan *rpc.Down
	once   sync.Once
	closed chan struct{}
}

func (s *fakeStream) Send(v any) error {
	select {
	case s.up <- v:
		return nil
	case <-s.closed:
		return errors.New("stream closed")
	}
}

func (s *fakeStream) Recv(v any) error {
	select {
	case d := <-s.down:
		*v.(*rpc.Down) = *d
		return nil
	case <-s.closed:
		return errors.New("stream closed")
	}
}

func (s *fakeStream) Close() error {
	s.once.Do(func() { close(s.closed) })
	return nil
}

// next returns the next message of type T the worker sends, skipping
// others (credit announcements, heartbeats) for which skip returns true.
func next[T any](t *testing.T, s *fakeStream, want func(T) bool) T {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case v := <-s.up:
			if m, ok := v.(T); ok && want(m) {
				return m
			}
		case <-deadline:
			var zero T
			t.Fatalf("no %T from the worker within 10s", zero)
			return zero
		}
	}
}

func reports(u *rpc.Up) bool   { return len(u.Reports) > 0 }
func credit(u *rpc.Up) bool    { return u.Credit != nil }
func anyHello(*rpc.Hello) bool { return true }
func lease(id string, token uint64, payload string) rpc.Lease {
	return rpc.Lease{ID: id, Token: token, Attempt: 1, Plugin: "p", Payload: []byte(payload)}
}

func startWorker(t *testing.T, ttl time.Duration) (*Worker, *fakeLeader, string) {
	t.Helper()
	dir := t.TempDir()
	l := &fakeLeader{streams: make(chan *fakeStream)}
	w := New(Config{Node: "n1", LeaseTTL: ttl}, fakePlugins{}, l, NewLogs(dir))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("worker did not stop within 10s")
		}
	})
	return w, l, dir
}

func accept(t *testing.T, l *fakeLeader) *fakeStream {
	t.Helper()
	select {
	case s := <-l.streams:
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("the worker opened no dispatch stream within 10s")
		return nil
	}
}

// TestWorkerRunsLeasesAndReportsOnce: against a fake leader, the worker
// says hello as a restarted node, announces its two free slots, runs a
// pushed lease, reports its result in a numbered batch, and frees the slot
// only once the batch is acknowledged. The job's output lands in its log.
func TestWorkerRunsLeasesAndReportsOnce(t *testing.T) {
	w, l, dir := startWorker(t, time.Hour)
	s := accept(t, l)
	if h := next(t, s, anyHello); !h.Restarted || h.Node != "n1" || len(h.Running) != 0 {
		t.Fatalf("first hello %+v, want a restarted n1 with no leases", h)
	}
	s.down <- &rpc.Down{Welcome: true}
	if c := next(t, s, credit).Credit; c.Free["p"] != 2 {
		t.Fatalf("credit %+v, want 2 free slots of p", c)
	}
	s.down <- &rpc.Down{Leases: []rpc.Lease{lease("j1", 7, "hello")}}
	up := next(t, s, reports)
	r := up.Reports[0]
	if len(up.Reports) != 1 || r.ID != "j1" || r.Token != 7 || r.Outcome != queue.OutcomeSucceeded || string(r.Result) != "hello" || up.Seq == 0 {
		t.Fatalf("report %+v (seq %d), want j1's success with its result", up.Reports, up.Seq)
	}
	// Until the batch is acknowledged, the slot stays taken; the ack frees
	// it (the leader counts the freed slot itself, so no announcement is
	// needed).
	if free := w.freeSlots()["p"]; free != 1 {
		t.Fatalf("%d free slots before the ack, want 1", free)
	}
	s.down <- &rpc.Down{Acked: up.Seq, Rejected: []string{""}}
	waitFree(t, w, 2)
	b, err := os.ReadFile(filepath.Join(dir, "logs", "j1", "1.log"))
	if err != nil || string(b) != "running j1\n" {
		t.Fatalf("job log %q (%v), want the plugin's line", b, err)
	}
}

// TestWorkerAbortCancelsTheCall: an abort with reason "cancelled" ends the
// plugin call and the attempt is reported cancelled; an abort with a stale
// token is ignored.
func TestWorkerAbortCancelsTheCall(t *testing.T) {
	w, l, _ := startWorker(t, time.Hour)
	s := accept(t, l)
	next(t, s, anyHello)
	s.down <- &rpc.Down{Welcome: true, Leases: []rpc.Lease{lease("j2", 9, "block")}}
	deadline := time.Now().Add(10 * time.Second)
	for !w.Runs("j2", 1) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	s.down <- &rpc.Down{Abort: []queue.Abort{{ID: "j2", Token: 8, Reason: "cancelled"}}}
	s.down <- &rpc.Down{Abort: []queue.Abort{{ID: "j2", Token: 9, Reason: "cancelled"}}}
	r := next(t, s, reports).Reports[0]
	if r.ID != "j2" || r.Token != 9 || r.Outcome != queue.OutcomeCancelled {
		t.Fatalf("report %+v, want j2 cancelled under token 9", r)
	}
}

// TestWorkerReannouncesLeasesToANewLeader: when the stream ends (the
// leader changed), the worker opens a new one, says hello without the
// restart flag, re-announces the lease it still runs, and sends again the
// report the old leader never acknowledged.
func TestWorkerReannouncesLeasesToANewLeader(t *testing.T) {
	w, l, _ := startWorker(t, time.Hour)
	s := accept(t, l)
	next(t, s, anyHello)
	s.down <- &rpc.Down{Welcome: true, Leases: []rpc.Lease{lease("done", 1, "x"), lease("long", 2, "block")}}
	first := next(t, s, reports)
	if first.Reports[0].ID != "done" {
		t.Fatalf("report %+v, want done's", first.Reports)
	}
	s.Close() // the old leader is gone before acknowledging

	s2 := accept(t, l)
	h := next(t, s2, anyHello)
	held := map[string]uint64{}
	for _, r := range h.Running {
		held[r.ID] = r.Token
	}
	if h.Restarted || held["long"] != 2 || held["done"] != 1 {
		t.Fatalf("hello to the new leader %+v, want both leases re-announced and no restart", h)
	}
	s2.down <- &rpc.Down{Welcome: true}
	again := next(t, s2, reports)
	if again.Reports[0].ID != "done" || again.Reports[0].Token != 1 {
		t.Fatalf("resent report %+v, want done's", again.Reports)
	}
	if !w.Runs("long", 1) {
		t.Fatal("the long job stopped when the stream ended")
	}
}

// TestWorkerHeartbeatsItsLeases: leases are renewed every third of the
// lease TTL on the stream.
func TestWorkerHeartbeatsItsLeases(t *testing.T) {
	_, l, _ := startWorker(t, 150*time.Millisecond)
	s := accept(t, l)
	next(t, s, anyHello)
	s.down <- &rpc.Down{Welcome: true, Leases: []rpc.Lease{lease("j", 5, "block")}}
	hb := next(t, s, func(u *rpc.Up) bool { return len(u.Heartbeat) > 0 })
	if hb.Heartbeat[0] != (queue.LeaseRef{ID: "j", Token: 5}) {
		t.Fatalf("heartbeat %+v, want lease j/5", hb.Heartbeat)
	}
}

// TestWorkerRunsALeaseOnce: the same lease delivered twice (handed over on
// a new stream after the old one delivered it too) runs once.
func TestWorkerRunsALeaseOnce(t *testing.T) {
	w, l, _ := startWorker(t, time.Hour)
	s := accept(t, l)
	next(t, s, anyHello)
	s.down <- &rpc.Down{Welcome: true, Leases: []rpc.Lease{lease("dup", 3, "once")}}
	s.down <- &rpc.Down{Leases: []rpc.Lease{lease("dup", 3, "once")}}
	first := next(t, s, reports)
	s.down <- &rpc.Down{Acked: first.Seq, Rejected: []string{""}}
	// After the ack both slots are free again only if the lease ran once.
	waitFree(t, w, 2)
	select {
	case v := <-s.up:
		if u, ok := v.(*rpc.Up); ok && len(u.Reports) > 0 {
			t.Fatalf("a second report %+v for a lease delivered twice", u.Reports)
		}
	default:
	}
}

// waitFree polls until plugin p has n free slots on w.
func waitFree(t *testing.T, w *Worker, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for w.freeSlots()["p"] != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d free slots, want %d", w.freeSlots()["p"], n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
