package snapshot

import (
	"bytes"
	"errors"
	"testing"

	"github.com/corral-dev/corral/queue"
)

// TestVerifyRefusesBadState: an archive whose checksums match but whose
// queue state is damaged (as a bug or a hand edit would make) is refused,
// as are a wrong size and an unknown format; a good one verifies.
func TestVerifyRefusesBadState(t *testing.T) {
	st := queue.New()
	var state bytes.Buffer
	if _, err := st.Snapshot().WriteTo(&state); err != nil {
		t.Fatal(err)
	}
	good := state.Bytes()
	damaged := bytes.Clone(good)
	damaged[len(damaged)-1] ^= 1 // the queue stream's own CRC
	cases := []struct {
		name  string
		meta  Meta
		state []byte
		ok    bool
	}{
		{"good", Meta{Format: FormatVersion, Size: int64(len(good)), Version: 1}, good, true},
		{"damaged state", Meta{Format: FormatVersion, Size: int64(len(damaged)), Version: 1}, damaged, false},
		{"future format", Meta{Format: FormatVersion + 1, Size: int64(len(good)), Version: 1}, good, false},
	}
	for _, c := range cases {
		var archive bytes.Buffer
		if err := write(&archive, c.meta, bytes.NewReader(c.state)); err != nil {
			t.Fatalf("%s: write: %v", c.name, err)
		}
		_, err := Inspect(&archive)
		if c.ok && err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
		if !c.ok && !errors.Is(err, ErrBadArchive) {
			t.Errorf("%s: got %v, want ErrBadArchive", c.name, err)
		}
	}
}
