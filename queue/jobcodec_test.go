package queue

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// sampleWireJob has every field set, including the ones the snapshot job
// record leaves out (DependsOn) and the unexported holdsKey.
func sampleWireJob() *Job {
	return &Job{
		ID: "01J0A",
		Spec: Spec{Queue: "mail", Plugin: "exec", Payload: []byte{0, 1, 0, 2}, Priority: -3, MaxAttempts: 5,
			Timeout: -time.Second, RunAt: t0.Add(time.Hour), UniqueKey: "u", UniqueFor: time.Minute,
			Constraints: map[string]string{"zone": "a", "arch": "arm64"}, DependsOn: []string{"01J09", ""}},
		State: StateRunning, Attempt: 2, Node: "n1", Token: 1 << 40, LeaseExpiresAt: t0.Add(time.Second),
		CancelRequested: true, Result: []byte("r"), Error: "boom",
		Attempts: []Attempt{
			{Attempt: 1, Node: "n2", Token: 7, Started: t0, Finished: t0.Add(time.Millisecond), Outcome: OutcomeLost, Error: "lost"},
			{Attempt: 2, Node: "n1", Token: 1 << 40, Started: time.Unix(0, -5).UTC()},
		},
		CreatedAt: t0, UpdatedAt: t0.Add(2 * time.Second), Seq: 99, Index: 12,
		holdsKey: true,
	}
}

func TestJobWireRoundTrip(t *testing.T) {
	for _, j := range []*Job{sampleWireJob(), {ID: "x"}, {}} {
		enc := AppendJob([]byte("prefix"), j)[len("prefix"):]
		rest := append(bytes.Clone(enc), "tail"...)
		got, n, err := DecodeJob(rest)
		if err != nil {
			t.Fatalf("decode %q: %v", j.ID, err)
		}
		if n != len(enc) {
			t.Fatalf("decode %q took %d bytes, want %d", j.ID, n, len(enc))
		}
		if !reflect.DeepEqual(got, j) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, j)
		}
		if again := AppendJob(nil, got); !bytes.Equal(again, enc) {
			t.Fatalf("re-encoding differs")
		}
		// Decoded bytes do not alias the input.
		for i := range rest {
			rest[i] = 0xff
		}
		if !reflect.DeepEqual(got, j) {
			t.Fatal("decoded job aliases the input buffer")
		}
	}
}

// TestJobWireEmptyIsNil pins the one normalisation: empty slices and maps
// decode as nil.
func TestJobWireEmptyIsNil(t *testing.T) {
	j := &Job{ID: "x", Spec: Spec{Payload: []byte{}, Constraints: map[string]string{}, DependsOn: []string{}}, Attempts: []Attempt{}, Result: []byte{}}
	got, _, err := DecodeJob(AppendJob(nil, j))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, &Job{ID: "x"}) {
		t.Fatalf("got %+v", got)
	}
}

func TestJobWireRejects(t *testing.T) {
	enc := AppendJob(nil, sampleWireJob())
	for i := range enc {
		if _, _, err := DecodeJob(enc[:i]); !errors.Is(err, ErrBadCommand) {
			t.Fatalf("truncated at %d of %d: %v, want ErrBadCommand", i, len(enc), err)
		}
	}
	// A huge attempt count with nothing behind it.
	j := &Job{ID: "x"}
	b := appendJob(nil, j)
	// The record ends with the attempt count (0), three times and seq and
	// index (one byte each): replace them with a count of 2^32-1.
	b = append(b[:len(b)-6], 0xff, 0xff, 0xff, 0xff, 0x0f)
	if _, _, err := DecodeJob(b); !errors.Is(err, ErrBadCommand) || !strings.Contains(err.Error(), "count exceeds input") {
		t.Fatalf("huge count: %v", err)
	}
}
