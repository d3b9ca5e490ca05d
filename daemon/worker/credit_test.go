package worker

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/corral-dev/corral/daemon/rpc"
	"github.com/corral-dev/corral/plugins/host"
	"github.com/corral-dev/corral/queue"
)

// slotPlugins is plugin "p" with cap slots. It counts the calls running
// at once and fails a call beyond cap, as the plugin host does ("no free
// plugin slot").
type slotPlugins struct {
	cap     int
	running atomic.Int64
	over    atomic.Int64
}

func (p *slotPlugins) Plugins() []host.Status {
	return []host.Status{{Name: "p", Status: host.StateReady, Concurrency: p.cap}}
}

func (p *slotPlugins) Run(ctx context.Context, plugin string, req host.RunRequest, r host.Reporter) ([]byte, error) {
	defer p.running.Add(-1)
	if p.running.Add(1) > int64(p.cap) {
		p.over.Add(1)
		return nil, fmt.Errorf("no free plugin slot: plugin %q runs %d jobs", plugin, p.cap)
	}
	// A job that takes a moment, so calls overlap.
	deadline := time.Now().Add(20 * time.Microsecond)
	for time.Now().Before(deadline) {
	}
	return nil, nil
}

// TestCreditNeverOverGrants: a leader that grants exactly the credit the
// worker's announcements give it (free = Free - (leases sent - Seen) +
// (slots its acks freed - Released), the server's formula) never holds
// more leases out than the worker has slots, nor makes it run more jobs
// than that, while leases, acks and
// announcements (every millisecond here) interleave freely. An
// announcement that counted a lease in Seen before its slot was taken,
// or a freed slot in Free before it was counted in Released, made the
// leader over-grant, and the extra jobs failed with "no free plugin slot".
func TestCreditNeverOverGrants(t *testing.T) {
	defer func(d time.Duration) { pluginRecheck = d }(pluginRecheck)
	pluginRecheck = time.Millisecond
	const slots, total = 256, 50000
	plugins := &slotPlugins{cap: slots}
	l := &fakeLeader{streams: make(chan *fakeStream)}
	w := New(Config{Node: "n1", LeaseTTL: time.Hour}, plugins, l, NewLogs(t.TempDir()))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.Run(ctx)
	}()
	defer func() {
		cancel()
		<-done
	}()
	s := accept(t, l)
	next[*rpc.Hello](t, s, anyHello)
	s.down <- &rpc.Down{Welcome: true}

	var (
		last              *rpc.Credit
		sent, released    uint64
		granted, finished int
		failed            []string
	)
	deadline := time.After(60 * time.Second)
	for finished < total {
		if last != nil {
			free := int64(last.Free["p"]) - int64(sent-min(last.Seen["p"], sent)) + int64(released-min(last.Released["p"], released))
			var d rpc.Down
			for ; free > 0 && granted < total; free-- {
				granted++
				sent++
				d.Leases = append(d.Leases, lease(fmt.Sprintf("j%d", granted), 1, "x"))
			}
			// Every lease granted and not yet acknowledged holds a slot
			// on the worker: more than it has is an over-grant.
			if out := sent - released; out > slots {
				t.Fatalf("the worker's announcement %+v let the leader hold %d leases out on %d slots", *last, out, slots)
			}
			if len(d.Leases) > 0 {
				select {
				case s.down <- &d:
				case <-deadline:
					t.Fatalf("stuck after %d of %d jobs", finished, total)
				}
			}
		}
		var msg any
		select {
		case msg = <-s.up:
		case <-deadline:
			t.Fatalf("stuck after %d of %d jobs", finished, total)
		}
		u, ok := msg.(*rpc.Up)
		if !ok {
			continue
		}
		if u.Credit != nil {
			last = u.Credit
		}
		if len(u.Reports) > 0 {
			for _, r := range u.Reports {
				if r.Outcome != queue.OutcomeSucceeded && len(failed) < 3 {
					failed = append(failed, r.ID+": "+r.Error)
				}
			}
			finished += len(u.Reports)
			released += uint64(len(u.Reports))
			s.down <- &rpc.Down{Acked: u.Seq, Rejected: make([]string, len(u.Reports))}
		}
	}
	if n := plugins.over.Load(); n > 0 || len(failed) > 0 {
		t.Fatalf("the leader's credit let %d calls run beyond the %d slots; e.g. %v", n, slots, failed)
	}
}
