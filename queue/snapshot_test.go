package queue

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"sync"
	"testing"
	"time"
)

// busyHarness returns a store with jobs in every state and index.
func busyHarness(t testing.TB) *harness {
	h := newHarness(t)
	h.one(&SetQueue{Name: "slow", Fields: FieldConcurrency | FieldRetention | FieldPaused, Config: QueueConfig{Concurrency: 1, Retention: time.Hour, Paused: true}})
	ids := h.submit(
		Spec{Plugin: "p", UniqueKey: "u1", UniqueFor: time.Hour, Payload: []byte("a")},
		Spec{Plugin: "p", Priority: 3, Constraints: map[string]string{"zone": "a"}},
		Spec{Plugin: "p", RunAt: t0.Add(time.Hour)},
		Spec{Queue: "slow", Plugin: "q"},
		Spec{Plugin: "p"},
		Spec{Plugin: "p"},
	)
	ls := h.one(&Claim{Node: "n1", Tags: map[string]string{"zone": "a"}, Slots: map[string]int{"p": 3}}).Leases
	h.report("n1", ls[0], OutcomeSucceeded, "done")
	h.report("n1", ls[1], OutcomeFailed, "boom")
	h.one(&Cancel{ID: ids[5]})
	h.one(&SetPeriodic{Periodic: Periodic{Name: "nightly", Cron: "0 3 * * *", Timezone: "Europe/Berlin", CatchUp: true,
		Job: Spec{Plugin: "p", Payload: []byte(`{}`), Constraints: map[string]string{"zone": "a"}}}})
	return h
}

func TestSnapshotRestore(t *testing.T) {
	h := busyHarness(t)
	data := snapshotBytes(t, h.s)

	r := New()
	if err := r.Restore(bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, r)
	assertSameState(t, dump(h.s), dump(r))
	if r.Index() != h.s.Index() || !r.NextDeadline().Equal(h.s.NextDeadline()) {
		t.Fatalf("index %d/%d deadline %v/%v", r.Index(), h.s.Index(), r.NextDeadline(), h.s.NextDeadline())
	}
	if !reflect.DeepEqual(r.Running("n1"), h.s.Running("n1")) {
		t.Fatal("running leases differ")
	}
	// The same future commands give the same results on both.
	h2 := &harness{t: t, s: r, index: h.index, now: h.now, ids: h.ids}
	for _, hh := range []*harness{h, h2} {
		hh.advance(2 * time.Hour)
	}
	cmds := []Command{
		&SetQueue{Name: "slow", Fields: FieldPaused},
		&Submit{IDs: []string{"x1", "x2"}, Specs: []Spec{{Plugin: "p", UniqueKey: "u1"}, {Plugin: "q", Priority: 9}}},
		&Claim{Node: "n2", Slots: map[string]int{"p": 10, "q": 10}},
		&ExpireLeases{},
		&Purge{},
	}
	want, got := h.apply(cmds...), h2.apply(cmds...)
	if !reflect.DeepEqual(want, got) {
		t.Fatalf("results differ after restore:\nwant %+v\n got %+v", want, got)
	}
	assertSameState(t, dump(h.s), dump(r))
}

func TestRestoreCorruptLeavesStateUntouched(t *testing.T) {
	h := busyHarness(t)
	data := snapshotBytes(t, h.s)

	target := busyHarness(t)
	target.submit(Spec{Plugin: "other"})
	before := dump(target.s)

	corrupt := map[string][]byte{
		"empty":     nil,
		"truncated": data[:len(data)/2],
		"no crc":    data[:len(data)-4],
		"trailing":  append(append([]byte{}, data...), 1),
		"bad magic": append([]byte("XXXX"), data[4:]...),
	}
	for i := 5; i < len(data); i += 7 {
		b := append([]byte{}, data...)
		b[i] ^= 0x5a
		corrupt["flipped"+string(rune('a'+i%26))+string(rune('0'+i%10))] = b
	}
	for name, b := range corrupt {
		if err := target.s.Restore(bytes.NewReader(b)); !errors.Is(err, ErrBadSnapshot) {
			t.Fatalf("%s: restore err %v", name, err)
		}
		assertSameState(t, before, dump(target.s))
	}
}

// Snapshot only copies pointers; WriteTo runs while Apply keeps changing
// the store and still writes the state as of the Snapshot call.
func TestSnapshotConcurrentWithApply(t *testing.T) {
	h := busyHarness(t)
	want := dump(h.s)
	sn := h.s.Snapshot()

	var wg sync.WaitGroup
	var buf bytes.Buffer
	var werr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, werr = sn.WriteTo(&buf)
	}()
	for i := 0; i < 50; i++ {
		h.advance(time.Minute)
		h.submit(Spec{Plugin: "p"})
		h.claim("n3", "p", 2)
		h.one(&ExpireLeases{})
	}
	wg.Wait()
	if werr != nil {
		t.Fatal(werr)
	}
	r := New()
	if err := r.Restore(&buf); err != nil {
		t.Fatal(err)
	}
	assertSameState(t, want, dump(r))
}

func TestSnapshotWriteError(t *testing.T) {
	h := busyHarness(t)
	if _, err := h.s.Snapshot().WriteTo(failWriter{}); err == nil {
		t.Fatal("write error not reported")
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, io.ErrClosedPipe }
