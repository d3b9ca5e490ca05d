package queue

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"
	"time"
)

// everySecond is a six-field spec that ticks on every whole second.
const everySecond = "* * * * * *"

func (h *harness) setPeriodic(p Periodic) {
	h.t.Helper()
	if r := h.one(&SetPeriodic{Periodic: p}); r.Err != nil {
		h.t.Fatalf("set periodic: %v", r.Err)
	}
}

func (h *harness) periodic(name string) PeriodicInfo {
	h.t.Helper()
	p, ok := h.s.Periodic(name)
	if !ok {
		h.t.Fatalf("periodic %s not found", name)
	}
	return p
}

// fire fires the tick that is due now and returns the result.
func (h *harness) fireDue(name string) (time.Time, Result) {
	h.t.Helper()
	p := h.periodic(name)
	tick, ok := p.Due(h.now)
	if !ok {
		h.t.Fatalf("periodic %s: nothing due at %s", name, h.now)
	}
	return tick, h.one(&FirePeriodic{Name: name, Tick: tick, ID: h.newIDs(1)[0]})
}

// assertRejected applies c and checks that it fails with want and
// changes nothing.
func (h *harness) assertRejected(c Command, want error) {
	h.t.Helper()
	before := dump(h.s)
	r := h.one(c)
	if !errors.Is(r.Err, want) {
		h.t.Fatalf("%T: got error %v, want %v", c, r.Err, want)
	}
	assertSameState(h.t, before, dump(h.s))
}

func TestPeriodicFiresEachTickOnce(t *testing.T) {
	h := newHarness(t)
	h.setPeriodic(Periodic{Name: "p", Cron: everySecond, Overlap: OverlapAllow, Job: Spec{Plugin: "echo"}})
	if _, ok := h.periodic("p").Due(h.now); ok {
		t.Fatal("a tick at the creation time must not fire")
	}
	h.advance(1500 * time.Millisecond)
	tick, r := h.fireDue("p")
	if r.Err != nil || r.Count != 1 || len(r.Submitted) != 1 {
		t.Fatalf("first fire: %+v", r)
	}
	if want := t0.Add(time.Second); !tick.Equal(want) {
		t.Fatalf("tick %s, want %s", tick, want)
	}
	j := h.job(r.Submitted[0].ID)
	if j.Plugin != "echo" || j.Queue != DefaultQueue || j.State != StateQueued {
		t.Fatalf("fired job %+v", j)
	}
	// The same tick again, as a second leader would send it: rejected,
	// nothing changes.
	h.assertRejected(&FirePeriodic{Name: "p", Tick: tick, ID: "dup"}, ErrAlreadyFired)
	// An earlier tick too.
	h.assertRejected(&FirePeriodic{Name: "p", Tick: t0.Add(500 * time.Millisecond), ID: "dup"}, ErrAlreadyFired)
	if _, ok := h.periodic("p").Due(h.now); ok {
		t.Fatal("nothing is due after the tick fired")
	}
	if p := h.periodic("p"); p.Fired != 1 || p.LastJob != r.Submitted[0].ID || !p.LastTick.Equal(tick) {
		t.Fatalf("periodic after fire: %+v", p)
	}
}

func TestPeriodicRejectsBadTicks(t *testing.T) {
	h := newHarness(t)
	h.setPeriodic(Periodic{Name: "p", Cron: everySecond, Job: Spec{Plugin: "echo"}})
	h.advance(2 * time.Second)
	// Not yet due.
	h.assertRejected(&FirePeriodic{Name: "p", Tick: h.now.Add(time.Second), ID: "x"}, ErrBadTick)
	// Not on the schedule.
	h.assertRejected(&FirePeriodic{Name: "p", Tick: t0.Add(1500 * time.Millisecond), ID: "x"}, ErrBadTick)
	// Unknown periodic.
	h.assertRejected(&FirePeriodic{Name: "nope", Tick: h.now, ID: "x"}, ErrPeriodicNotFound)
	// A manual fire with a tick.
	h.assertRejected(&FirePeriodic{Name: "p", Tick: h.now, ID: "x", Manual: true}, ErrBadTick)
	// A job ID that exists already.
	id := h.submit(Spec{Plugin: "echo"})[0]
	h.assertRejected(&FirePeriodic{Name: "p", Tick: h.now, ID: id}, ErrBadSpec)
}

func TestPeriodicRejectsBadDefinitions(t *testing.T) {
	for _, p := range []Periodic{
		{Name: "", Cron: everySecond, Job: Spec{Plugin: "echo"}},
		{Name: "p", Cron: "61 * * * *", Job: Spec{Plugin: "echo"}},
		{Name: "p", Cron: "TZ=UTC * * * * *", Job: Spec{Plugin: "echo"}},
		{Name: "p", Cron: everySecond, Timezone: "Mars/Olympus", Job: Spec{Plugin: "echo"}},
		{Name: "p", Cron: everySecond, Job: Spec{}},
		{Name: "p", Cron: everySecond, Job: Spec{Plugin: "echo", RunAt: t0}},
		{Name: "p", Cron: everySecond, Overlap: 7, Job: Spec{Plugin: "echo"}},
	} {
		h := newHarness(t)
		r := h.one(&SetPeriodic{Periodic: p})
		if r.Err == nil {
			t.Fatalf("%+v accepted", p)
		}
		if len(h.s.Periodics()) != 0 {
			t.Fatalf("rejected %+v was stored", p)
		}
	}
}

func TestPeriodicSnapshotRestoreKeepsLastTick(t *testing.T) {
	h := newHarness(t)
	h.setPeriodic(Periodic{Name: "p", Cron: everySecond, Overlap: OverlapAllow, Job: Spec{Plugin: "echo", Payload: []byte(`{"a":1}`)}})
	h.advance(time.Second)
	tick, r := h.fireDue("p")
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	data := snapshotBytes(t, h.s)
	restored := New()
	if err := restored.Restore(bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	assertSameState(t, dump(h.s), dump(restored))
	// The new leader replays the same tick against the restored store.
	h2 := &harness{t: t, s: restored, index: h.index, now: h.now, ids: h.ids}
	h2.assertRejected(&FirePeriodic{Name: "p", Tick: tick, ID: "again"}, ErrAlreadyFired)
	h2.advance(time.Second)
	next, r := h2.fireDue("p")
	if r.Err != nil || !next.Equal(tick.Add(time.Second)) {
		t.Fatalf("next tick %s after restore: %+v", next, r)
	}
	// A snapshot of the restored store restores to the same state (job
	// records are written in map order, so bytes may differ).
	assertSameState(t, dump(restored), dump(restoredCopy(t, restored)))
}

func restoredCopy(t *testing.T, s *Store) *Store {
	t.Helper()
	c := New()
	if err := c.Restore(bytes.NewReader(snapshotBytes(t, s))); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRestoreVersion1Snapshot(t *testing.T) {
	h := newHarness(t)
	h.submit(Spec{Plugin: "p", Payload: []byte("a")}, Spec{Queue: "q", Plugin: "p", UniqueKey: "u"})
	data := snapshotBytes(t, h.s)
	// A version-1 stream is a version-2 stream without the section list:
	// rewrite the version byte, drop the terminator and fix the checksum.
	v1 := append([]byte(nil), data[:len(data)-5]...)
	v1[len(snapshotMagic)] = 1
	v1 = binary.BigEndian.AppendUint32(v1, crc32.Checksum(v1, crc32.MakeTable(crc32.Castagnoli)))
	s := New()
	if err := s.Restore(bytes.NewReader(v1)); err != nil {
		t.Fatalf("restore v1: %v", err)
	}
	assertSameState(t, dump(h.s), dump(s))
}

func TestPeriodicOverlapSkip(t *testing.T) {
	h := newHarness(t)
	h.setPeriodic(Periodic{Name: "p", Cron: everySecond, Job: Spec{Plugin: "echo"}})
	h.advance(time.Second)
	_, r := h.fireDue("p")
	first := r.Submitted[0].ID
	// The first job still waits: the next tick is skipped but counts as
	// fired.
	h.advance(time.Second)
	tick, r := h.fireDue("p")
	if r.Err != nil || r.Count != 0 || len(r.Submitted) != 0 {
		t.Fatalf("overlapping tick: %+v", r)
	}
	if p := h.periodic("p"); p.Skipped != 1 || p.Fired != 1 || !p.LastTick.Equal(tick) || p.LastJob != first {
		t.Fatalf("after skip: %+v", p)
	}
	h.assertRejected(&FirePeriodic{Name: "p", Tick: tick, ID: "dup"}, ErrAlreadyFired)
	// Once the job finished, the next tick makes a job again.
	ls := h.claim("n1", "echo", 1)
	if err := h.report("n1", ls[0], OutcomeSucceeded, "ok"); err != nil {
		t.Fatal(err)
	}
	h.advance(time.Second)
	if _, r = h.fireDue("p"); r.Count != 1 {
		t.Fatalf("tick after the job finished: %+v", r)
	}
}

func TestPeriodicOverlapAllow(t *testing.T) {
	h := newHarness(t)
	h.setPeriodic(Periodic{Name: "p", Cron: everySecond, Overlap: OverlapAllow, Job: Spec{Plugin: "echo"}})
	for i := 0; i < 3; i++ {
		h.advance(time.Second)
		if _, r := h.fireDue("p"); r.Count != 1 {
			t.Fatalf("tick %d: %+v", i, r)
		}
	}
	if n := len(h.s.List(Filter{})); n != 3 {
		t.Fatalf("%d jobs, want 3", n)
	}
}

func TestPeriodicCatchUpFiresEveryMissedTickInOrder(t *testing.T) {
	h := newHarness(t)
	h.setPeriodic(Periodic{Name: "p", Cron: everySecond, Overlap: OverlapAllow, CatchUp: true, Job: Spec{Plugin: "echo"}})
	h.advance(5 * time.Second) // no leader for five ticks
	// Skipping ahead is refused.
	h.assertRejected(&FirePeriodic{Name: "p", Tick: t0.Add(3 * time.Second), ID: "x"}, ErrBadTick)
	for i := 1; i <= 5; i++ {
		tick, r := h.fireDue("p")
		if r.Err != nil || !tick.Equal(t0.Add(time.Duration(i)*time.Second)) {
			t.Fatalf("catch-up %d: tick %s, %+v", i, tick, r)
		}
	}
	if _, ok := h.periodic("p").Due(h.now); ok {
		t.Fatal("caught up, yet a tick is due")
	}
}

func TestPeriodicWithoutCatchUpFiresLatestTickOnly(t *testing.T) {
	h := newHarness(t)
	h.setPeriodic(Periodic{Name: "p", Cron: everySecond, Overlap: OverlapAllow, Job: Spec{Plugin: "echo"}})
	h.advance(5 * time.Second)
	tick, r := h.fireDue("p")
	if r.Err != nil || !tick.Equal(t0.Add(5*time.Second)) {
		t.Fatalf("tick %s, %+v", tick, r)
	}
	h.assertRejected(&FirePeriodic{Name: "p", Tick: t0.Add(3 * time.Second), ID: "x"}, ErrAlreadyFired)
	// A long idle dense schedule is bounded work.
	h.advance(48 * time.Hour)
	if tick, r = h.fireDue("p"); r.Err != nil || !tick.Equal(h.now) {
		t.Fatalf("after two days: tick %s, %+v", tick, r)
	}
}

func TestPeriodicManualFire(t *testing.T) {
	h := newHarness(t)
	h.setPeriodic(Periodic{Name: "p", Cron: "@daily", Job: Spec{Plugin: "echo"}})
	before := h.periodic("p").LastTick
	r := h.one(&FirePeriodic{Name: "p", ID: "manual", Manual: true})
	if r.Err != nil || r.Count != 1 {
		t.Fatalf("run now: %+v", r)
	}
	// Run-now ignores the overlap policy.
	if r = h.one(&FirePeriodic{Name: "p", ID: "manual2", Manual: true}); r.Err != nil || r.Count != 1 {
		t.Fatalf("second run now: %+v", r)
	}
	if p := h.periodic("p"); !p.LastTick.Equal(before) || p.LastJob != "manual2" {
		t.Fatalf("run now moved the schedule: %+v", p)
	}
}

func TestPeriodicTimezone(t *testing.T) {
	h := newHarness(t)
	h.setPeriodic(Periodic{Name: "p", Cron: "0 9 * * *", Timezone: "Europe/Berlin", Job: Spec{Plugin: "echo"}})
	p := h.periodic("p")
	// 09:00 in Berlin on 1 January is 08:00 UTC.
	if got, want := p.Next(h.now), t0.Add(8*time.Hour); !got.Equal(want) {
		t.Fatalf("next %s, want %s", got, want)
	}
}

func TestPeriodicUpdateKeepsLastTickAndDelete(t *testing.T) {
	h := newHarness(t)
	h.setPeriodic(Periodic{Name: "p", Cron: everySecond, Job: Spec{Plugin: "echo"}})
	h.advance(time.Second)
	tick, _ := h.fireDue("p")
	h.setPeriodic(Periodic{Name: "p", Cron: everySecond, Overlap: OverlapAllow, Job: Spec{Plugin: "exec"}})
	h.assertRejected(&FirePeriodic{Name: "p", Tick: tick, ID: "dup"}, ErrAlreadyFired)
	if p := h.periodic("p"); !p.LastTick.Equal(tick) || p.Job.Plugin != "exec" {
		t.Fatalf("after update: %+v", p)
	}
	if r := h.one(&DeletePeriodic{Name: "p"}); r.Err != nil {
		t.Fatal(r.Err)
	}
	h.assertRejected(&DeletePeriodic{Name: "p"}, ErrPeriodicNotFound)
	if n := len(h.s.List(Filter{})); n != 1 {
		t.Fatalf("delete removed jobs: %d left", n)
	}
}
