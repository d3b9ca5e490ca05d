package snapshot

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
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
		want  string // "" when the archive is good
	}{
		{"good", Meta{Format: FormatVersion, Size: int64(len(good)), Version: 1}, good, ""},
		{"damaged state", Meta{Format: FormatVersion, Size: int64(len(damaged)), Version: 1}, damaged, "queue state"},
		{"future format", Meta{Format: FormatVersion + 1, Size: int64(len(good)), Version: 1}, good, "archive format"},
		{"wrong size", Meta{Format: FormatVersion, Size: int64(len(good)) + 1, Version: 1}, good, "meta.json says"},
	}
	for _, c := range cases {
		archive := writeUnchecked(t, c.meta, c.state)
		_, err := Inspect(archive)
		if c.want == "" && err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
		if c.want != "" && (!errors.Is(err, ErrBadArchive) || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s: got %v, want ErrBadArchive saying %q", c.name, err, c.want)
		}
	}
}

// writeUnchecked writes an archive like write, with valid checksums, but
// with meta.json as given even when its size is not state's.
func writeUnchecked(t *testing.T, meta Meta, state []byte) *bytes.Buffer {
	t.Helper()
	var archive bytes.Buffer
	if meta.Size == int64(len(state)) {
		if err := write(&archive, meta, bytes.NewReader(state)); err != nil {
			t.Fatal(err)
		}
		return &archive
	}
	mb, err := json.Marshal(meta)
	if err != nil {
		t.Fatal(err)
	}
	gz := gzip.NewWriter(&archive)
	tw := tar.NewWriter(gz)
	ms, ss := sha256.Sum256(mb), sha256.Sum256(state)
	sums := fmt.Sprintf("%x  meta.json\n%x  state.bin\n", ms, ss)
	for _, f := range []struct {
		name string
		b    []byte
	}{{"meta.json", mb}, {"state.bin", state}, {"SHA256SUMS", []byte(sums)}} {
		if err := addFile(tw, f.name, int64(len(f.b)), bytes.NewReader(f.b)); err != nil {
			t.Fatal(err)
		}
	}
	if err := errors.Join(tw.Close(), gz.Close()); err != nil {
		t.Fatal(err)
	}
	return &archive
}
