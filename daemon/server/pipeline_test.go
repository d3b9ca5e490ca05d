package server

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/corral-dev/corral/queue"
)

func one(int) int { return 1 }

// An idle pipeline sends what is waiting at once: a lone request is not
// held back.
func TestGatherIdleSendsAtOnce(t *testing.T) {
	in := make(chan int, 4)
	in <- 2
	in <- 3
	p := newPipeline(2)
	got := gather(context.Background(), in, []int{1}, 10, 100, one, p)
	if !slices.Equal(got, []int{1, 2, 3}) {
		t.Fatalf("gather = %v, want [1 2 3]", got)
	}
}

// While a batch is in flight, later requests join one batch that leaves
// when the in-flight one ends: group commit.
func TestGatherWaitsForInflightBatch(t *testing.T) {
	in := make(chan int) // unbuffered: a send returns once gather has the item
	p := newPipeline(2)
	if !p.acquire(context.Background()) {
		t.Fatal("acquire failed")
	}
	done := make(chan []int, 1)
	go func() { done <- gather(context.Background(), in, []int{1}, 10, 100, one, p) }()
	// Each send completes only if gather is still taking items; if it
	// returned while the batch was in flight, the send can never complete
	// and its result arrives instead. No timing is involved either way.
	for i := 2; i <= 5; i++ {
		select {
		case in <- i:
		case got := <-done:
			t.Fatalf("gather returned %v while a batch was in flight (before item %d)", got, i)
		}
	}
	p.release()
	select {
	case got := <-done:
		if !slices.Equal(got, []int{1, 2, 3, 4, 5}) {
			t.Fatalf("gather = %v, want [1 2 3 4 5]", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("gather did not return after the in-flight batch ended")
	}
}

// A batch that reaches the full weight joins the pipeline without waiting,
// and max caps its size.
func TestGatherFullBatchPipelines(t *testing.T) {
	p := newPipeline(2)
	p.acquire(context.Background())
	in := make(chan int, 8)
	for i := 2; i <= 8; i++ {
		in <- i
	}
	if got := gather(context.Background(), in, []int{1}, 100, 4, one, p); len(got) != 8 {
		t.Fatalf("full batch = %v, want all 8 waiting items", got)
	}
	for i := 1; i <= 8; i++ {
		in <- i
	}
	if got := gather(context.Background(), in, nil, 5, 100, one, p); len(got) != 5 {
		t.Fatalf("batch of max 5 = %v", got)
	}
}

func parkedClaim(slots map[string]int) *applyReq {
	return &applyReq{cmd: &queue.Claim{Node: "n", Slots: slots}}
}

// An entry takes only the parked claims its jobs need, oldest first; the
// rest stay parked for the next entry (so the next submit finds a claim to
// ride with instead of waiting a commit for a poll).
func TestParkedClaimsTakeWhatTheJobsNeed(t *testing.T) {
	var p parkedClaims
	a := parkedClaim(map[string]int{"echo": 100})
	b := parkedClaim(map[string]int{"exec": 5})
	c := parkedClaim(map[string]int{"echo": 100})
	d := parkedClaim(map[string]int{"echo": 100})
	for _, r := range []*applyReq{a, b, c, d} {
		p.park(r)
	}
	if got := p.take(10, map[string]int{"echo": 10}, false); !slices.Equal(got, []*applyReq{a}) {
		t.Fatalf("10 echo jobs took %d claims, want only the oldest echo claim", len(got))
	}
	if got := p.take(10, map[string]int{"echo": 150}, false); !slices.Equal(got, []*applyReq{c, d}) {
		t.Fatalf("150 echo jobs took %d claims, want the two echo claims left", len(got))
	}
	if got := p.take(10, map[string]int{"echo": 1}, false); len(got) != 0 {
		t.Fatalf("echo jobs took %d claims with only an exec claim parked", len(got))
	}
	if got := p.take(10, map[string]int{}, true); !slices.Equal(got, []*applyReq{b}) {
		t.Fatalf("an entry that can make any work took %d claims, want every parked one", len(got))
	}
}
