package binenc

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestRoundTrip: every primitive reads back what was appended, and the
// reads consume the input exactly.
func TestRoundTrip(t *testing.T) {
	when := time.Unix(1700000000, 5).UTC()
	var b []byte
	b = AppendString(b, "queue")
	b = AppendBytes(b, []byte{0, 1})
	b = AppendInt(b, -7)
	b = AppendDur(b, -time.Second)
	b = AppendBool(b, true)
	b = AppendTime(b, when)
	b = AppendTime(b, time.Time{})
	d := NewDecoder(b, nil)
	if s := d.Str(); s != "queue" {
		t.Errorf("Str = %q", s)
	}
	if r := d.Raw(); string(r) != "\x00\x01" {
		t.Errorf("Raw = %q", r)
	}
	if v := d.Int(); v != -7 {
		t.Errorf("Int = %d", v)
	}
	if v := d.Dur(); v != -time.Second {
		t.Errorf("Dur = %v", v)
	}
	if !d.Bool() {
		t.Error("Bool = false")
	}
	if v := d.Time(); !v.Equal(when) || v.Location() != time.UTC {
		t.Errorf("Time = %v", v)
	}
	if v := d.Time(); !v.IsZero() {
		t.Errorf("zero Time = %v", v)
	}
	d.End()
	if d.Err() != nil || d.Len() != 0 {
		t.Fatalf("err %v, %d bytes left", d.Err(), d.Len())
	}
}

// TestRejects: non-canonical and short input fails with the kind, what
// went wrong and the offset, and every later read returns zero.
func TestRejects(t *testing.T) {
	kind := errors.New("bad input")
	for _, tc := range []struct {
		name string
		in   []byte
		read func(d *Decoder)
		want string
	}{
		{"overlong varint", []byte{0x80, 0x00}, func(d *Decoder) { d.Uvarint() }, "bad varint at byte 0"},
		{"truncated varint", []byte{0x80}, func(d *Decoder) { d.Uvarint() }, "truncated at byte 0"},
		{"empty", nil, func(d *Decoder) { d.Byte() }, "truncated at byte 0"},
		{"bool 2", []byte{2}, func(d *Decoder) { d.Bool() }, "bad bool at byte 1"},
		{"count over input", []byte{5, 1, 2}, func(d *Decoder) { d.Count(1) }, "count exceeds input (5) at byte 1"},
		{"opt count over input", []byte{6, 1, 2}, func(d *Decoder) { d.OptCount(1) }, "count exceeds input (5) at byte 1"},
		{"length over input", []byte{3, 'a'}, func(d *Decoder) { d.Str() }, "length 3 exceeds input at byte 1"},
		{"trailing", []byte{1, 0, 0}, func(d *Decoder) { d.Bool(); d.End() }, "2 trailing bytes at byte 1"},
	} {
		d := NewDecoder(tc.in, kind)
		tc.read(&d)
		err := d.Err()
		if !errors.Is(err, kind) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q wrapping the kind", tc.name, err, tc.want)
		}
		if d.Byte() != 0 || d.Uvarint() != 0 || d.Str() != "" || d.Err() != err {
			t.Errorf("%s: reads after the error are not zero, or the first error changed", tc.name)
		}
	}
	if n, ok := func() (int, bool) { d := NewDecoder([]byte{0}, nil); return d.OptCount(1) }(); ok || n != 0 {
		t.Errorf("OptCount of 0 = %d, %v; want absent", n, ok)
	}
}
