package queue

import (
	"fmt"

	"github.com/corral-dev/corral/internal/binenc"
)

// Snapshot sections (format version 2) carry state other than jobs and
// queues. After the job records a snapshot holds any number of section
// records, each `len:uvarint tag:string body`, ended by a record of length
// 0. Restore rejects an unknown tag: silently dropping replicated state
// would let nodes diverge. A new kind of state adds one entry to
// snapshotSections and needs no other change to the format.
type snapshotSection struct {
	tag string
	// capture encodes the section's state at snapshot time (called under
	// the store's read lock); nil omits the section.
	capture func(st *state) []byte
	// restore decodes a body into st; errors go through d.Fail.
	restore func(st *state, d *decoder)
}

var snapshotSections = []snapshotSection{
	{tag: "periodic", capture: capturePeriodics, restore: restorePeriodics},
	{tag: "deps", capture: captureDeps, restore: restoreDeps},
	{tag: "rates", capture: captureRates, restore: restoreRates},
}

// captureSections encodes every non-empty section as `tag body`.
func (st *state) captureSections() [][]byte {
	var out [][]byte
	for _, s := range snapshotSections {
		body := s.capture(st)
		if body == nil {
			continue
		}
		rec := binenc.AppendString(nil, s.tag)
		out = append(out, append(rec, body...))
	}
	return out
}

// restoreSection decodes one section record into st.
func (st *state) restoreSection(rec []byte) error {
	d := newDecoder(rec, st.names, true)
	tag := d.Str()
	if d.Err() != nil {
		return d.Err()
	}
	for _, s := range snapshotSections {
		if s.tag == tag {
			s.restore(st, &d)
			d.End()
			if d.Err() != nil {
				return fmt.Errorf("section %q: %w", tag, d.Err())
			}
			return nil
		}
	}
	return fmt.Errorf("unknown section %q", tag)
}
