package server

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/corral-dev/corral/daemon/raftnode"
	"github.com/corral-dev/corral/daemon/rpc"
	"github.com/corral-dev/corral/queue"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// TestCreditsSubtractLeasesInFlight: the leader's view of a worker's free
// slots is what the worker announced, less the leases sent that the
// announcement had not seen yet; a confused worker claiming to have seen
// more leases than were sent cannot inflate its credit.
func TestCreditsSubtractLeasesInFlight(t *testing.T) {
	c := newCredits()
	if got := c.available(); len(got) != 0 {
		t.Fatalf("credit before any announcement: %v", got)
	}
	c.announce(&rpc.Credit{Free: map[string]int{"p": 3, "q": 0}})
	c.granted("p")
	c.granted("p")
	if got := c.available(); got["p"] != 1 || len(got) != 1 {
		t.Fatalf("after 2 leases sent: %v, want p:1", got)
	}
	// Computed when the worker had seen one of the two leases: 2 free
	// then, and one more lease is still on its way.
	c.announce(&rpc.Credit{Free: map[string]int{"p": 2}, Seen: map[string]uint64{"p": 1}})
	if got := c.available(); got["p"] != 1 {
		t.Fatalf("after a stale announcement: %v, want p:1", got)
	}
	c.announce(&rpc.Credit{Free: map[string]int{"p": 1}, Seen: map[string]uint64{"p": 2}})
	if got := c.available(); got["p"] != 1 {
		t.Fatalf("after an up-to-date announcement: %v, want p:1", got)
	}
	c.announce(&rpc.Credit{Free: map[string]int{"p": 1}, Seen: map[string]uint64{"p": 99}})
	if got := c.available(); got["p"] != 1 {
		t.Fatalf("seen more than sent: %v, want p:1", got)
	}
	c.announce(&rpc.Credit{Free: map[string]int{"p": -5}})
	if got := c.available(); len(got) != 0 {
		t.Fatalf("negative free slots: %v, want none", got)
	}
	// An ack freeing 3 slots counts at once; an announcement that had
	// already counted 2 of them counts only the third on top.
	c.announce(&rpc.Credit{Free: map[string]int{"p": 0}, Seen: map[string]uint64{"p": 2}})
	c.release(map[string]int{"p": 3})
	if got := c.available(); got["p"] != 3 {
		t.Fatalf("after an ack freed 3: %v, want p:3", got)
	}
	c.announce(&rpc.Credit{Free: map[string]int{"p": 2}, Seen: map[string]uint64{"p": 2}, Released: map[string]uint64{"p": 2}})
	if got := c.available(); got["p"] != 3 {
		t.Fatalf("after an announcement that counted 2 of the 3: %v, want p:3", got)
	}
}

// testServer is a one-node server on an in-memory raft.
func testServer(t *testing.T) *Server {
	t.Helper()
	store := queue.New()
	addr, trans := raft.NewInmemTransport("")
	rc := raft.DefaultConfig()
	rc.LocalID = "n1"
	rc.Logger = hclog.NewNullLogger()
	rc.HeartbeatTimeout, rc.ElectionTimeout, rc.LeaderLeaseTimeout = 50*time.Millisecond, 50*time.Millisecond, 50*time.Millisecond
	notify := make(chan bool, 16)
	rc.NotifyCh = notify
	logs := raft.NewInmemStore()
	r, err := raft.NewRaft(rc, &raftnode.FSM{Store: store}, logs, logs, raft.NewInmemSnapshotStore(), trans)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.BootstrapCluster(raft.Configuration{Servers: []raft.Server{{ID: "n1", Address: addr}}}).Error(); err != nil {
		t.Fatal(err)
	}
	s := New(Config{NodeID: "n1", LeaseTTL: time.Minute}, r, notify, store)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		_ = r.Shutdown().Error()
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.mu.Lock()
		ready := s.term.Err() == nil
		s.mu.Unlock()
		if ready {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatal("no leadership within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// workerEnd is the worker's end of an in-memory dispatch stream.
type workerEnd struct {
	up   chan any
	down chan *rpc.Down
}

// leaderEnd implements Stream for the server.
type leaderEnd struct {
	w   *workerEnd
	ctx context.Context
}

func (l *leaderEnd) Send(v any) error {
	select {
	case l.w.down <- v.(*rpc.Down):
		return nil
	case <-l.ctx.Done():
		return l.ctx.Err()
	}
}

func (l *leaderEnd) Recv(v any) error {
	select {
	case m := <-l.w.up:
		switch p := v.(type) {
		case *rpc.Hello:
			*p = *m.(*rpc.Hello)
		case *rpc.Up:
			*p = *m.(*rpc.Up)
		}
		return nil
	case <-l.ctx.Done():
		return l.ctx.Err()
	}
}

// expect returns the next message that want accepts.
func (w *workerEnd) expect(t *testing.T, what string, want func(*rpc.Down) bool) *rpc.Down {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case d := <-w.down:
			if want(d) {
				return d
			}
		case <-deadline:
			t.Fatalf("no %s from the leader within 10s", what)
			return nil
		}
	}
}

func dispatch(t *testing.T, s *Server, hello *rpc.Hello) (*workerEnd, *rpc.Down) {
	t.Helper()
	w := &workerEnd{up: make(chan any, 16), down: make(chan *rpc.Down, 16)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Dispatch(ctx, &leaderEnd{w: w, ctx: ctx}) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("Dispatch did not return within 10s of its stream ending")
		}
	})
	w.up <- hello
	return w, w.expect(t, "welcome", func(d *rpc.Down) bool { return d.Welcome })
}

func submit(t *testing.T, s *Server, specs ...queue.Spec) []string {
	t.Helper()
	ids := make([]string, len(specs))
	for i := range ids {
		ids[i] = "job-" + time.Now().Format("150405.000000000") + string(rune('a'+i))
	}
	res, _, err := s.Apply(context.Background(), &queue.Submit{IDs: ids, Specs: specs})
	if err = errors.Join(err, res.Err); err != nil {
		t.Fatal(err)
	}
	return ids
}

// TestDispatchPushesLeasesForCredit: a worker's credit is turned into
// leases pushed down its stream, one per free slot and no more; a report
// is acknowledged once committed; a cancel is pushed as an abort at once.
func TestDispatchPushesLeasesForCredit(t *testing.T) {
	s := testServer(t)
	ids := submit(t, s, queue.Spec{Plugin: "p"}, queue.Spec{Plugin: "p"}, queue.Spec{Plugin: "p"})
	w, _ := dispatch(t, s, &rpc.Hello{Node: "w1"})
	w.up <- &rpc.Up{Credit: &rpc.Credit{Free: map[string]int{"p": 2}}}
	var got []rpc.Lease
	for len(got) < 2 {
		got = append(got, w.expect(t, "leases", func(d *rpc.Down) bool { return len(d.Leases) > 0 }).Leases...)
	}
	if len(got) != 2 || got[0].ID != ids[0] || got[1].ID != ids[1] {
		t.Fatalf("leases %+v, want the first two jobs in order", got)
	}
	if j, _ := s.store.Get(ids[2]); j.State != queue.StateQueued {
		t.Fatalf("third job is %s: a worker with 2 slots got more than 2 leases", j.State)
	}
	if _, _, err := s.Apply(context.Background(), &queue.Cancel{ID: got[1].ID}); err != nil {
		t.Fatal(err)
	}
	a := w.expect(t, "abort", func(d *rpc.Down) bool { return len(d.Abort) > 0 }).Abort[0]
	if a.ID != got[1].ID || a.Token != got[1].Token || a.Reason != "cancelled" {
		t.Fatalf("abort %+v, want the cancel of %s", a, got[1].ID)
	}
	w.up <- &rpc.Up{Seq: 4, Reports: []queue.Report{{ID: got[0].ID, Token: got[0].Token, Outcome: queue.OutcomeSucceeded, Result: []byte("ok")}}}
	ack := w.expect(t, "ack", func(d *rpc.Down) bool { return d.Acked != 0 })
	if ack.Acked != 4 || len(ack.Rejected) != 1 || ack.Rejected[0] != "" {
		t.Fatalf("ack %+v, want seq 4 accepted", ack)
	}
	if j, _ := s.store.Get(got[0].ID); j.State != queue.StateSucceeded || j.Node != "w1" {
		t.Fatalf("reported job: %s on %q", j.State, j.Node)
	}
}

// TestDispatchWritesNoEntriesForUnclaimableJobs: a worker with free slots
// and jobs it cannot take (a constraint it does not meet) costs no raft
// entries, however long it waits; a job it can take is leased at once.
func TestDispatchWritesNoEntriesForUnclaimableJobs(t *testing.T) {
	s := testServer(t)
	submit(t, s, queue.Spec{Plugin: "p", Constraints: map[string]string{"gpu": "yes"}})
	w, _ := dispatch(t, s, &rpc.Hello{Node: "w1"})
	w.up <- &rpc.Up{Credit: &rpc.Credit{Free: map[string]int{"p": 4}}}
	// A runnable job after the credit shows the credit has arrived.
	ok := submit(t, s, queue.Spec{Plugin: "p"})
	if l := w.expect(t, "lease", func(d *rpc.Down) bool { return len(d.Leases) > 0 }).Leases; l[0].ID != ok[0] {
		t.Fatalf("leases %+v, want %s", l, ok[0])
	}
	start := s.raft.LastIndex()
	for end := time.Now().Add(time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if idx := s.raft.LastIndex(); idx != start {
			t.Fatalf("raft index moved from %d to %d with only an unclaimable job queued", start, idx)
		}
	}
}

// TestDispatchRestartedWorkerLosesOldLeases: a hello with the restart flag
// first ends the leases the node held before it restarted (re-queued as
// lost attempts); a reconnecting worker's hello renews the leases it
// re-announces and gets aborts for those that are no longer its own.
func TestDispatchRestartedWorkerLosesOldLeases(t *testing.T) {
	s := testServer(t)
	ids := submit(t, s, queue.Spec{Plugin: "p"}, queue.Spec{Plugin: "p"})
	res, _, err := s.Apply(context.Background(), &queue.Claim{Node: "w1", Slots: map[string]int{"p": 2}})
	if err != nil || len(res.Leases) != 2 {
		t.Fatalf("claim: %v %+v", err, res)
	}
	_, welcome := dispatch(t, s, &rpc.Hello{Node: "w1", Running: []queue.LeaseRef{
		{ID: ids[0], Token: res.Leases[0].Token}, {ID: ids[1], Token: res.Leases[1].Token + 1},
	}})
	if len(welcome.Abort) != 1 || welcome.Abort[0].ID != ids[1] {
		t.Fatalf("welcome aborts %+v, want the lease with a stale token", welcome.Abort)
	}
	if j, _ := s.store.Get(ids[0]); j.State != queue.StateRunning {
		t.Fatalf("re-announced lease: job is %s, want still running", j.State)
	}
	w2 := &workerEnd{up: make(chan any, 16), down: make(chan *rpc.Down, 16)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = s.Dispatch(ctx, &leaderEnd{w: w2, ctx: ctx}) }()
	w2.up <- &rpc.Hello{Node: "w1", Restarted: true}
	w2.expect(t, "welcome", func(d *rpc.Down) bool { return d.Welcome })
	for _, id := range ids {
		if j, _ := s.store.Get(id); j.State != queue.StateQueued || j.Attempts[0].Outcome != queue.OutcomeLost {
			t.Fatalf("after the restart, job %s is %s with attempt %+v, want re-queued as lost", id, j.State, j.Attempts[0])
		}
	}
}

// TestDispatchHandsOverLeasesThatNeverArrived: a lease the FSM holds for a
// node whose worker does not know of it (pushed on a stream that died on
// the way) is handed to the worker in the welcome of its next stream,
// instead of expiring a lease TTL later.
func TestDispatchHandsOverLeasesThatNeverArrived(t *testing.T) {
	s := testServer(t)
	ids := submit(t, s, queue.Spec{Plugin: "p"}, queue.Spec{Plugin: "p"})
	res, _, err := s.Apply(context.Background(), &queue.Claim{Node: "w1", Slots: map[string]int{"p": 2}})
	if err != nil || len(res.Leases) != 2 {
		t.Fatalf("claim: %v %+v", err, res)
	}
	known := queue.LeaseRef{ID: res.Leases[0].Job.ID, Token: res.Leases[0].Token}
	_, welcome := dispatch(t, s, &rpc.Hello{Node: "w1", Running: []queue.LeaseRef{known}})
	if len(welcome.Leases) != 1 || welcome.Leases[0].ID != ids[1] || welcome.Leases[0].Token != res.Leases[1].Token {
		t.Fatalf("welcome leases %+v, want the one lease the worker did not know (%s)", welcome.Leases, ids[1])
	}
}

// TestDispatchRefillsFreedSlotsInTheReportsEntry: with more jobs queued
// than the worker has slots, the slots a report batch frees are leased in
// the same raft entry as the batch's Complete, and the leases travel in
// the ack; the worker's credit is not granted twice.
func TestDispatchRefillsFreedSlotsInTheReportsEntry(t *testing.T) {
	s := testServer(t)
	ids := submit(t, s, queue.Spec{Plugin: "p"}, queue.Spec{Plugin: "p"}, queue.Spec{Plugin: "p"}, queue.Spec{Plugin: "p"}, queue.Spec{Plugin: "p"})
	w, _ := dispatch(t, s, &rpc.Hello{Node: "w1"})
	w.up <- &rpc.Up{Credit: &rpc.Credit{Free: map[string]int{"p": 2}}}
	var got []rpc.Lease
	for len(got) < 2 {
		got = append(got, w.expect(t, "leases", func(d *rpc.Down) bool { return len(d.Leases) > 0 }).Leases...)
	}
	before := s.raft.LastIndex()
	w.up <- &rpc.Up{Seq: 1, Reports: []queue.Report{
		{ID: got[0].ID, Token: got[0].Token, Outcome: queue.OutcomeSucceeded},
		{ID: got[1].ID, Token: got[1].Token, Outcome: queue.OutcomeSucceeded},
	}}
	ack := w.expect(t, "ack", func(d *rpc.Down) bool { return d.Acked != 0 })
	if ack.Acked != 1 || len(ack.Leases) != 2 || ack.Leases[0].ID != ids[2] || ack.Leases[1].ID != ids[3] {
		t.Fatalf("ack %+v, want seq 1 carrying the leases of the next two jobs", ack)
	}
	j2, _ := s.store.Get(ids[2])
	j0, _ := s.store.Get(ids[0])
	if j0.State != queue.StateSucceeded || j2.State != queue.StateRunning {
		t.Fatalf("after the report: %s and %s, want succeeded and running", j0.State, j2.State)
	}
	if after := s.raft.LastIndex(); after != before+1 {
		t.Fatalf("report and refill took raft entries %d..%d, want one", before+1, after)
	}
	// The two slots are taken again: the fifth job waits.
	for end := time.Now().Add(300 * time.Millisecond); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if j, _ := s.store.Get(ids[4]); j.State != queue.StateQueued {
			t.Fatalf("fifth job is %s: a worker with 2 slots got a third lease", j.State)
		}
	}
}
