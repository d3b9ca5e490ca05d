// Package snapshot saves and restores a Corral cluster's state as an
// archive file, on top of raft's user snapshot and restore (as Consul's
// `consul snapshot` does): Save takes a fresh raft snapshot on the leader
// and wraps it; Restore checks an archive completely — checksums and every
// record of the queue state — before it hands it to raft.Restore, so a
// corrupt or truncated file changes nothing.
//
// The archive is a gzip-compressed tar holding, in this order:
//
//	meta.json   raft's snapshot metadata (index, term, size, version) and
//	            the archive's own format version
//	state.bin   the FSM snapshot stream (queue.Snapshot.WriteTo)
//	SHA256SUMS  sha256 of meta.json and state.bin, sha256sum format
package snapshot

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/corral-dev/corral/queue"
	"github.com/hashicorp/raft"
)

// Errors of this package.
var (
	// ErrBadArchive means a file is not a complete, intact snapshot archive.
	ErrBadArchive = errors.New("not a valid corral snapshot archive")
)

// FormatVersion is the archive format this package writes and reads.
const FormatVersion = 1

// Meta is the archive's meta.json.
type Meta struct {
	// Format is the archive format version (FormatVersion).
	Format int `json:"format"`
	// Raft is raft's metadata of the snapshot.
	ID      string `json:"id"`
	Index   uint64 `json:"index"`
	Term    uint64 `json:"term"`
	Size    int64  `json:"size"`
	Version int    `json:"version"`
	// Created is when the archive was made.
	Created time.Time `json:"created"`
}

// Info describes a verified archive (`corral operator snapshot inspect`).
type Info struct {
	Meta
	// State summarises the queue state inside.
	State queue.SnapshotSummary
}

// Save takes a raft snapshot on r (the leader) and writes it as an archive
// to w. It first waits for a barrier so that everything committed before
// the call is in the snapshot.
func Save(r *raft.Raft, w io.Writer, timeout time.Duration) (Meta, error) {
	if err := r.Barrier(timeout).Error(); err != nil {
		return Meta{}, fmt.Errorf("barrier before snapshot: %w", err)
	}
	fut := r.Snapshot()
	if err := fut.Error(); err != nil {
		return Meta{}, fmt.Errorf("take raft snapshot: %w", err)
	}
	rm, rc, err := fut.Open()
	if err != nil {
		return Meta{}, fmt.Errorf("open raft snapshot: %w", err)
	}
	defer rc.Close()
	meta := Meta{Format: FormatVersion, ID: rm.ID, Index: rm.Index, Term: rm.Term, Size: rm.Size,
		Version: int(rm.Version), Created: time.Now().UTC()}
	return meta, write(w, meta, rc)
}

// write writes the archive of meta and the state stream.
func write(w io.Writer, meta Meta, state io.Reader) error {
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	mb, err := json.MarshalIndent(meta, "", "  ")
	if err != nil {
		return fmt.Errorf("encode snapshot meta: %w", err)
	}
	sums := sha256.New()
	if err := addFile(tw, "meta.json", int64(len(mb)), bytes.NewReader(mb)); err != nil {
		return err
	}
	metaSum := sha256.Sum256(mb)
	if err := addFile(tw, "state.bin", meta.Size, io.TeeReader(state, sums)); err != nil {
		return err
	}
	sumFile := fmt.Sprintf("%x  meta.json\n%x  state.bin\n", metaSum, sums.Sum(nil))
	if err := addFile(tw, "SHA256SUMS", int64(len(sumFile)), strings.NewReader(sumFile)); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("write snapshot archive: %w", err)
	}
	if err := gz.Close(); err != nil {
		return fmt.Errorf("write snapshot archive: %w", err)
	}
	return nil
}

func addFile(tw *tar.Writer, name string, size int64, r io.Reader) error {
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: size, ModTime: time.Now(), Typeflag: tar.TypeReg}); err != nil {
		return fmt.Errorf("write snapshot archive: %w", err)
	}
	if n, err := io.Copy(tw, r); err != nil {
		return fmt.Errorf("write snapshot archive (%s): %w", name, err)
	} else if n != size {
		return fmt.Errorf("write snapshot archive: %s is %d bytes, expected %d", name, n, size)
	}
	return nil
}

// Verified is an archive that passed every check, with its state stream
// kept in a temporary file until Close.
type Verified struct {
	Info
	state *os.File
}

// Close removes the temporary state file.
func (v *Verified) Close() error {
	name := v.state.Name()
	err := v.state.Close()
	return errors.Join(err, os.Remove(name))
}

// Verify reads a whole archive from r, checks its checksums and decodes
// the queue state completely, keeping the state stream in a temporary
// file under tmpDir ("" for the system default). Any error wraps
// ErrBadArchive and names what is wrong.
func Verify(r io.Reader, tmpDir string) (*Verified, error) {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return nil, bad("not gzip data: %w", err)
	}
	tr := tar.NewReader(gz)
	var (
		metaBytes []byte
		sums      string
		stateSum  []byte
		state     *os.File
	)
	ok := false
	defer func() {
		if !ok && state != nil {
			_ = state.Close()
			_ = os.Remove(state.Name())
		}
	}()
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, bad("truncated or corrupt archive: %w", err)
		}
		switch hdr.Name {
		case "meta.json":
			if metaBytes, err = io.ReadAll(io.LimitReader(tr, 1<<20)); err != nil {
				return nil, bad("read meta.json: %w", err)
			}
		case "state.bin":
			if state, err = os.CreateTemp(tmpDir, "corral-restore-*.bin"); err != nil {
				return nil, fmt.Errorf("temporary file for the snapshot: %w", err)
			}
			h := sha256.New()
			if _, err := io.Copy(io.MultiWriter(state, h), tr); err != nil {
				return nil, bad("truncated or corrupt archive (state.bin): %w", err)
			}
			stateSum = h.Sum(nil)
		case "SHA256SUMS":
			b, err := io.ReadAll(io.LimitReader(tr, 1<<16))
			if err != nil {
				return nil, bad("read SHA256SUMS: %w", err)
			}
			sums = string(b)
		default:
			return nil, bad("unexpected file %q in archive", hdr.Name)
		}
	}
	// Reading to the end checks the gzip trailer (CRC-32 and length).
	if _, err := io.Copy(io.Discard, gz); err != nil {
		return nil, bad("truncated or corrupt archive: %w", err)
	}
	if metaBytes == nil || state == nil || sums == "" {
		return nil, bad("archive lacks meta.json, state.bin or SHA256SUMS (truncated?)")
	}
	metaSum := sha256.Sum256(metaBytes)
	if err := checkSum(sums, "meta.json", metaSum[:]); err != nil {
		return nil, err
	}
	if err := checkSum(sums, "state.bin", stateSum); err != nil {
		return nil, err
	}
	var meta Meta
	if err := json.Unmarshal(metaBytes, &meta); err != nil {
		return nil, bad("meta.json: %w", err)
	}
	if meta.Format != FormatVersion {
		return nil, bad("archive format %d; this corral reads format %d", meta.Format, FormatVersion)
	}
	size, err := state.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, fmt.Errorf("snapshot temporary file: %w", err)
	}
	if size != meta.Size {
		return nil, bad("state.bin is %d bytes, meta.json says %d", size, meta.Size)
	}
	if _, err := state.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("snapshot temporary file: %w", err)
	}
	summary, err := queue.InspectSnapshot(state)
	if err != nil {
		return nil, bad("queue state: %w", err)
	}
	if _, err := state.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("snapshot temporary file: %w", err)
	}
	ok = true
	return &Verified{Info: Info{Meta: meta, State: summary}, state: state}, nil
}

func checkSum(sums, name string, got []byte) error {
	for _, line := range strings.Split(sums, "\n") {
		sum, file, found := strings.Cut(line, "  ")
		if found && file == name {
			if sum != hex.EncodeToString(got) {
				return bad("%s checksum mismatch (file corrupt)", name)
			}
			return nil
		}
	}
	return bad("SHA256SUMS has no entry for %s", name)
}

func bad(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrBadArchive}, args...)...)
}

// Inspect verifies an archive and describes it.
func Inspect(r io.Reader) (Info, error) {
	v, err := Verify(r, "")
	if err != nil {
		return Info{}, err
	}
	defer v.Close()
	return v.Info, nil
}

// Restore replaces the cluster's state with the verified archive's, through
// raft.Restore on r (the leader): the leader installs it and followers
// receive it as a snapshot. The raft configuration is kept (a snapshot can
// be restored into a different cluster).
func Restore(r *raft.Raft, v *Verified, timeout time.Duration) error {
	meta := &raft.SnapshotMeta{
		Version: raft.SnapshotVersion(v.Version), ID: v.ID, Index: v.Index, Term: v.Term, Size: v.Size,
	}
	if err := r.Restore(meta, v.state, timeout); err != nil {
		return fmt.Errorf("raft restore: %w", err)
	}
	return nil
}
