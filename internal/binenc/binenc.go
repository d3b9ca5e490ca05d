// Package binenc is the canonical binary encoding shared by the raft log
// and snapshots (package queue) and the node plane's hot messages
// (daemon/rpc): integers and durations are zigzag varints, counts, lengths
// and tokens uvarints, strings and byte strings length-prefixed, bools and
// presence bytes 0 or 1, and times UTC unix nanoseconds with 0 for the
// zero time. A Decoder accepts only the canonical form (minimal varints,
// bools 0 or 1), so whatever it accepts re-encodes to the same bytes, and
// it checks every count and length against the bytes left before anything
// is allocated for them.
package binenc

import (
	"encoding/binary"
	"fmt"
	"time"
)

// AppendString appends s with its length.
func AppendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// AppendBytes appends p with its length (nil and empty are the same).
func AppendBytes(b, p []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(p)))
	return append(b, p...)
}

// AppendInt appends v as a zigzag varint.
func AppendInt(b []byte, v int) []byte { return binary.AppendVarint(b, int64(v)) }

// AppendDur appends d as a zigzag varint of nanoseconds.
func AppendDur(b []byte, d time.Duration) []byte { return binary.AppendVarint(b, int64(d)) }

// AppendBool appends v as 0 or 1.
func AppendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

// AppendTime appends t as unix nanoseconds, the zero time as 0.
func AppendTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(b, 0)
	}
	return binary.AppendVarint(b, t.UnixNano())
}

// Decoder reads the encoding. After the first error every read returns a
// zero value and the input is dropped, so callers check Err once at the
// end.
type Decoder struct {
	b    []byte
	size int   // of the whole input, for offsets in errors
	kind error // wrapped by every error when set
	err  error
}

// NewDecoder reads b; its errors wrap kind when kind is not nil.
func NewDecoder(b []byte, kind error) Decoder {
	return Decoder{b: b, size: len(b), kind: kind}
}

// Err is the first error, nil if none.
func (d *Decoder) Err() error { return d.err }

// Len is the number of bytes not read yet.
func (d *Decoder) Len() int { return len(d.b) }

// Fail records what went wrong (unless an error is already recorded), at
// the current offset, and drops the rest of the input.
func (d *Decoder) Fail(what string) {
	if d.err == nil {
		off := d.size - len(d.b)
		if d.kind != nil {
			d.err = fmt.Errorf("%w: %s at byte %d", d.kind, what, off)
		} else {
			d.err = fmt.Errorf("%s at byte %d", what, off)
		}
	}
	d.b = nil
}

// End fails unless the input was read exactly.
func (d *Decoder) End() {
	if d.err == nil && len(d.b) != 0 {
		d.Fail(fmt.Sprintf("%d trailing bytes", len(d.b)))
	}
}

// Byte reads one byte.
func (d *Decoder) Byte() byte {
	if len(d.b) == 0 {
		d.Fail("truncated")
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

// Uvarint reads a minimal uvarint.
func (d *Decoder) Uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 || (n > 1 && d.b[n-1] == 0) {
		if n == 0 {
			d.Fail("truncated")
		} else {
			d.Fail("bad varint")
		}
		return 0
	}
	d.b = d.b[n:]
	return v
}

// Varint reads a zigzag varint.
func (d *Decoder) Varint() int64 {
	u := d.Uvarint()
	return int64(u>>1) ^ -int64(u&1)
}

// Int reads a zigzag varint that must fit an int.
func (d *Decoder) Int() int {
	v := d.Varint()
	if int64(int(v)) != v {
		d.Fail("integer overflow")
		return 0
	}
	return int(v)
}

// Dur reads a duration.
func (d *Decoder) Dur() time.Duration { return time.Duration(d.Varint()) }

// Time reads a time written by AppendTime (UTC, no monotonic reading).
func (d *Decoder) Time() time.Time {
	n := d.Varint()
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// Bool reads a byte that must be 0 or 1.
func (d *Decoder) Bool() bool {
	switch d.Byte() {
	case 0:
		return false
	case 1:
		return true
	}
	d.Fail("bad bool")
	return false
}

// Count reads an element count, which must fit in the rest of the input
// at min bytes an element: this bounds every allocation by the input.
func (d *Decoder) Count(min int) int {
	return d.fitting(d.Uvarint(), min)
}

// OptCount reads a count written as 0 for "absent" (a nil slice, map or
// byte string) and n+1 otherwise, bounded as Count.
func (d *Decoder) OptCount(min int) (n int, ok bool) {
	v := d.Uvarint()
	if v == 0 {
		return 0, false
	}
	return d.fitting(v-1, min), d.err == nil
}

func (d *Decoder) fitting(v uint64, min int) int {
	if v > uint64(len(d.b)/min) {
		d.Fail(fmt.Sprintf("count exceeds input (%d)", v))
		return 0
	}
	return int(v)
}

// Peek returns the unread input without consuming it (for a nested
// decoder, whose length the caller then passes to Next).
func (d *Decoder) Peek() []byte { return d.b }

// Next returns the next n bytes without copying.
func (d *Decoder) Next(n int) []byte {
	if n > len(d.b) {
		d.Fail(fmt.Sprintf("length %d exceeds input", n))
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

// Raw returns the next length-prefixed field without copying.
func (d *Decoder) Raw() []byte {
	n := d.Uvarint()
	if n > uint64(len(d.b)) {
		d.Fail(fmt.Sprintf("length %d exceeds input", n))
		return nil
	}
	return d.Next(int(n))
}

// Str returns a copy of the next length-prefixed field as a string.
func (d *Decoder) Str() string { return string(d.Raw()) }
