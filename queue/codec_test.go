package queue

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
	"time"
)

// sampleEntry holds every command kind with every field set.
func sampleEntry() Entry {
	return Entry{
		Now: t0.Add(1234567 * time.Nanosecond),
		Cmds: []Command{
			&Submit{IDs: []string{"01J0A", "01J0B"}, Specs: []Spec{
				{Queue: "mail", Plugin: "exec", Payload: []byte(`{"command":["true"]}`), Priority: -5, MaxAttempts: 3,
					Timeout: time.Minute, RunAt: t0.Add(time.Hour), UniqueKey: "u", UniqueFor: time.Hour,
					Constraints: map[string]string{"zone": "a", "arch": "arm64"}},
				{Plugin: "echo"},
			}},
			&Claim{Node: "n1", Tags: map[string]string{"zone": "a"}, Slots: map[string]int{"exec": 4, "echo": 1}, LeaseTTL: 10 * time.Second},
			&Heartbeat{Node: "n1", Leases: []LeaseRef{{ID: "01J0A", Token: 1 << 40}}, LeaseTTL: time.Second},
			&Complete{Reports: []Report{{ID: "01J0A", Token: 99, Node: "n1", Outcome: OutcomeFailed, Result: []byte("r"), Error: "boom", NonRetryable: true}}},
			&Cancel{ID: "01J0A"},
			&Retry{ID: "01J0B"},
			&SetQueue{Name: "mail", Fields: FieldPaused | FieldRetention, Config: QueueConfig{Paused: true, Concurrency: 2, MaxAttempts: 5, Retention: time.Hour, BackoffBase: time.Second}},
			&FailNode{Node: "n2", Reason: "failed"},
			&ExpireLeases{},
			&Purge{Limit: 100},
			&SetPeriodic{Periodic: Periodic{Name: "nightly", Cron: "0 3 * * *", Timezone: "Europe/Berlin", Overlap: OverlapAllow, CatchUp: true,
				Job: Spec{Queue: "mail", Plugin: "exec", Payload: []byte(`{}`), Priority: 2, Constraints: map[string]string{"zone": "a"}}}},
			&DeletePeriodic{Name: "nightly"},
			&FirePeriodic{Name: "nightly", Tick: t0.Add(time.Minute), ID: "01J0C"},
			&FirePeriodic{Name: "nightly", ID: "01J0D", Manual: true},
			&SubmitDAG{IDs: []string{"01J0E", "01J0F"}, Specs: []Spec{
				{Plugin: "echo", UniqueKey: "u2"},
				{Queue: "mail", Plugin: "exec", Priority: 1, DependsOn: []string{"01J0E", "01J0A"}},
			}},
			&SetQueueRate{Name: "mail", Rate: Rate{Count: 100, Per: time.Second, Burst: 20}},
		},
	}
}

func TestCodecRoundTrip(t *testing.T) {
	for _, e := range []Entry{sampleEntry(), {Now: t0}, {Now: time.Unix(0, -5)}} {
		data, err := Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Decode(data)
		if err != nil {
			t.Fatal(err)
		}
		if !got.Now.Equal(e.Now) || got.Now.IsZero() != e.Now.IsZero() {
			t.Fatalf("now %v, want %v", got.Now, e.Now)
		}
		got.Now = e.Now
		if !reflect.DeepEqual(got, e) {
			// Times differ only in location; compare re-encodings.
			again, _ := Encode(got)
			if !bytes.Equal(again, data) {
				t.Fatalf("round trip mismatch:\n got %#v\nwant %#v", got, e)
			}
		}
		sp := got.Cmds
		if len(sp) > 0 && !sp[0].(*Submit).Specs[0].RunAt.Equal(t0.Add(time.Hour)) {
			t.Fatal("run_at lost")
		}
	}
}

// roundTrip encodes e, checks that the bytes decode to an entry that
// encodes to the same bytes and that every truncation of them is
// ErrBadCommand, and returns the decoded entry.
func roundTrip(t *testing.T, e Entry) Entry {
	t.Helper()
	data, err := Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Encode(got)
	if err != nil || !bytes.Equal(again, data) {
		t.Fatalf("round trip: %v\n got %+v", err, got.Cmds)
	}
	for i := 1; i < len(data); i++ {
		if _, err := Decode(data[:i]); !errors.Is(err, ErrBadCommand) {
			t.Fatalf("truncated to %d bytes: %v", i, err)
		}
	}
	return got
}

func TestDecodeRejects(t *testing.T) {
	roundTrip(t, sampleEntry())
	good, err := Encode(sampleEntry())
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string][]byte{
		"empty":            nil,
		"unknown version":  append([]byte{9}, good[1:]...),
		"trailing byte":    append(append([]byte{}, good...), 0),
		"unknown kind":     {formatV1, 2, 1, 200},
		"non-minimal int":  {formatV1, 0x82, 0x00, 0},
		"no time":          {formatV1, 0, 0},
		"huge count":       {formatV1, 2, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"huge string":      {formatV1, 2, 1, byte(KindCancel), 0xff, 0xff, 0x03, 'a'},
		"bad bool":         {formatV1, 2, 1, byte(KindSetQueue), 1, 'q', 0, 7, 0, 0, 0, 0},
		"unsorted map key": {formatV1, 2, 1, byte(KindClaim), 1, 'n', 2, 1, 'b', 0, 1, 'a', 0, 0, 0},
	}
	for name, data := range cases {
		if _, err := Decode(data); !errors.Is(err, ErrBadCommand) {
			t.Errorf("%s: err %v", name, err)
		}
	}
	if _, err := Encode(Entry{}); !errors.Is(err, ErrBadCommand) {
		t.Fatalf("encode without time: %v", err)
	}
	if _, err := Encode(Entry{Now: t0, Cmds: []Command{(*Submit)(nil)}}); !errors.Is(err, ErrBadCommand) {
		t.Fatalf("encode nil command: %v", err)
	}
}

func TestApplyUndecodableChangesNothing(t *testing.T) {
	h := newHarness(t)
	h.submit(Spec{Plugin: "p"})
	before, idx := dump(h.s), h.s.Index()
	if _, err := h.s.Apply(99, []byte{formatV1, 2, 1, 200}); !errors.Is(err, ErrBadCommand) {
		t.Fatalf("apply garbage: %v", err)
	}
	assertSameState(t, before, dump(h.s))
	if h.s.Index() != idx {
		t.Fatal("index moved on a rejected entry")
	}
}

func FuzzDecode(f *testing.F) {
	seed, _ := Encode(sampleEntry())
	f.Add(seed)
	for _, c := range sampleEntry().Cmds {
		b, _ := Encode(Entry{Now: t0, Cmds: []Command{c}})
		f.Add(b)
	}
	f.Add([]byte{formatV1, 2, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := Decode(data)
		if err != nil {
			if !errors.Is(err, ErrBadCommand) {
				t.Fatalf("error does not wrap ErrBadCommand: %v", err)
			}
			return
		}
		again, err := Encode(e)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if !bytes.Equal(again, data) {
			t.Fatalf("Encode(Decode(x)) != x:\n x %x\n   %x", data, again)
		}
	})
}
