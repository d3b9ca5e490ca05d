package host

import (
	"testing"

	"github.com/corral-dev/corral/plugins/proto"
)

// A call's queued log lines are bounded; what is dropped is counted, while
// results are never dropped.
func TestSessionCallBoundsQueuedLogs(t *testing.T) {
	c := &sessionCall{ready: make(chan struct{}, 1)}
	logEv := &proto.SessionEvent{Event: &proto.SessionEvent_Log{Log: &proto.Log{Line: "x"}}}
	for i := 0; i < maxQueuedLogs+5; i++ {
		c.push(logEv)
	}
	c.push(&proto.SessionEvent{Event: &proto.SessionEvent_Result{Result: &proto.Result{}}})
	evs, dropped := c.take()
	if len(evs) != maxQueuedLogs+1 || dropped != 5 {
		t.Fatalf("queued %d events, dropped %d; want %d and 5", len(evs), dropped, maxQueuedLogs+1)
	}
	if _, ok := evs[len(evs)-1].GetEvent().(*proto.SessionEvent_Result); !ok {
		t.Fatal("the result was not queued after the log lines were dropped")
	}
	if evs, dropped = c.take(); len(evs) != 0 || dropped != 0 {
		t.Fatalf("take did not clear: %d events, %d dropped", len(evs), dropped)
	}
}
