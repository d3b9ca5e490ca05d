package queue

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"slices"

	"github.com/corral-dev/corral/internal/binenc"
)

// Snapshot stream format, version 2:
//
//	"CRLQ" 0x02
//	header = len:uvarint (index:uvarint seq:uvarint njobs:uvarint
//	         nqueues:uvarint (name:string config)*)
//	job*   = len:uvarint record        (njobs times, see appendJob)
//	section* 0x00                      (see sections.go)
//	crc    = 4 bytes big endian, CRC-32C of everything before it
//
// Version 1 is the same without the sections; Restore reads both.
//
// Records use the entry codec's primitives. Jobs are written in no
// particular order: Restore rebuilds every index from the job fields (Seq,
// Token, RunAt, ...) and the header's sequence counter, so the restored store
// claims, sequences and fences exactly like the original.
const (
	snapshotMagic   = "CRLQ"
	snapshotVersion = 2
	// maxRecord bounds one snapshot record (a job with a 1 MiB payload and a
	// 64 KiB result is far below it).
	maxRecord = 256 << 20
)

// Snapshot is a point-in-time copy of the state. Jobs are immutable, so it
// holds only pointers; WriteTo encodes them later, concurrently with new
// Applies.
type Snapshot struct {
	index  uint64
	seq    uint64
	queues []queueRecord
	jobs   []*Job
	// sections are encoded at capture time (see sections.go).
	sections [][]byte
	acl      *aclSnapshot // optional trailing section, see acl_snapshot.go
}

type queueRecord struct {
	name string
	cfg  QueueConfig
}

// Index returns the raft index the snapshot was taken at.
func (sn *Snapshot) Index() uint64 { return sn.index }

// Len returns the number of jobs in the snapshot.
func (sn *Snapshot) Len() int { return len(sn.jobs) }

func (st *state) snapshot() *Snapshot {
	sn := &Snapshot{
		index:  st.index,
		seq:    st.seq,
		queues: make([]queueRecord, 0, len(st.queues)),
		jobs:   make([]*Job, 0, len(st.jobs)),
		acl:    st.acl.snapshot(),
	}
	for name, q := range st.queues {
		sn.queues = append(sn.queues, queueRecord{name, q.cfg})
	}
	slices.SortFunc(sn.queues, func(a, b queueRecord) int {
		if a.name < b.name {
			return -1
		}
		return 1
	})
	for _, j := range st.jobs {
		sn.jobs = append(sn.jobs, j)
	}
	sn.sections = st.captureSections()
	return sn
}

// WriteTo writes the snapshot in the format Restore reads. It may run
// concurrently with Apply on the store it came from.
func (sn *Snapshot) WriteTo(w io.Writer) (int64, error) {
	cw := &countWriter{w: w}
	crc := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	// The checksum sees the buffered output in large chunks.
	out := bufio.NewWriterSize(io.MultiWriter(cw, crc), 1<<20)

	hdr := append([]byte(snapshotMagic), snapshotVersion)
	body := binary.AppendUvarint(nil, sn.index)
	body = binary.AppendUvarint(body, sn.seq)
	body = binary.AppendUvarint(body, uint64(len(sn.jobs)))
	body = binary.AppendUvarint(body, uint64(len(sn.queues)))
	for _, q := range sn.queues {
		body = binenc.AppendString(body, q.name)
		body = appendQueueConfig(body, &q.cfg)
	}
	hdr = binary.AppendUvarint(hdr, uint64(len(body)))
	hdr = append(hdr, body...)
	if _, err := out.Write(hdr); err != nil {
		return cw.n, fmt.Errorf("write snapshot header: %w", err)
	}

	var rec []byte
	for _, j := range sn.jobs {
		rec = appendJob(rec[:0], j)
		var lenBuf [binary.MaxVarintLen64]byte
		n := binary.PutUvarint(lenBuf[:], uint64(len(rec)))
		if _, err := out.Write(lenBuf[:n]); err != nil {
			return cw.n, fmt.Errorf("write snapshot: %w", err)
		}
		if _, err := out.Write(rec); err != nil {
			return cw.n, fmt.Errorf("write snapshot: %w", err)
		}
	}
	for _, sec := range append(sn.sections, nil) { // nil ends the list
		var lenBuf [binary.MaxVarintLen64]byte
		n := binary.PutUvarint(lenBuf[:], uint64(len(sec)))
		if _, err := out.Write(lenBuf[:n]); err != nil {
			return cw.n, fmt.Errorf("write snapshot section: %w", err)
		}
		if _, err := out.Write(sec); err != nil {
			return cw.n, fmt.Errorf("write snapshot section: %w", err)
		}
	}
	if err := out.Flush(); err != nil {
		return cw.n, fmt.Errorf("write snapshot: %w", err)
	}
	if _, err := cw.Write(crc.Sum(nil)); err != nil {
		return cw.n, fmt.Errorf("write snapshot checksum: %w", err)
	}
	return cw.n, sn.acl.writeTo(cw)
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// Job record flags.
const (
	flagCancelRequested = 1 << iota
	flagHoldsKey
)

// minJobSize is the fewest bytes an encoded job record takes.
const minJobSize = 1 + minSpecSize + 12

func appendJob(b []byte, j *Job) []byte {
	b = binenc.AppendString(b, j.ID)
	b = appendSpec(b, &j.Spec)
	b = append(b, byte(j.State))
	b = binary.AppendVarint(b, int64(j.Attempt))
	b = binenc.AppendString(b, j.Node)
	b = binary.AppendUvarint(b, j.Token)
	b = binenc.AppendTime(b, j.LeaseExpiresAt)
	var flags byte
	if j.CancelRequested {
		flags |= flagCancelRequested
	}
	if j.holdsKey {
		flags |= flagHoldsKey
	}
	b = append(b, flags)
	b = binenc.AppendBytes(b, j.Result)
	b = binenc.AppendString(b, j.Error)
	b = binary.AppendUvarint(b, uint64(len(j.Attempts)))
	for i := range j.Attempts {
		a := &j.Attempts[i]
		b = binary.AppendVarint(b, int64(a.Attempt))
		b = binenc.AppendString(b, a.Node)
		b = binary.AppendUvarint(b, a.Token)
		b = binenc.AppendTime(b, a.Started)
		b = binenc.AppendTime(b, a.Finished)
		b = append(b, byte(a.Outcome))
		b = binenc.AppendString(b, a.Error)
	}
	b = binenc.AppendTime(b, j.CreatedAt)
	b = binenc.AppendTime(b, j.UpdatedAt)
	b = binenc.AppendTime(b, j.FinishedAt)
	b = binary.AppendUvarint(b, j.Seq)
	return binary.AppendUvarint(b, j.Index)
}

func (d *decoder) job() *Job {
	j := &Job{ID: d.Str()}
	d.spec(&j.Spec)
	j.State = State(d.Byte())
	j.Attempt = d.Int()
	j.Node = d.name()
	j.Token = d.Uvarint()
	j.LeaseExpiresAt = d.Time()
	flags := d.Byte()
	if flags&^(flagCancelRequested|flagHoldsKey) != 0 {
		d.Fail("unknown job flags")
	}
	j.CancelRequested = flags&flagCancelRequested != 0
	j.holdsKey = flags&flagHoldsKey != 0
	j.Result = d.bytes()
	j.Error = d.Str()
	if n := d.Count(7); n > 0 {
		j.Attempts = make([]Attempt, n)
		for i := range j.Attempts {
			a := &j.Attempts[i]
			a.Attempt = d.Int()
			a.Node = d.name()
			a.Token = d.Uvarint()
			a.Started = d.Time()
			a.Finished = d.Time()
			a.Outcome = Outcome(d.Byte())
			a.Error = d.Str()
		}
	}
	j.CreatedAt = d.Time()
	j.UpdatedAt = d.Time()
	j.FinishedAt = d.Time()
	j.Seq = d.Uvarint()
	j.Index = d.Uvarint()
	return j
}

// errSnapshot wraps a restore failure in ErrBadSnapshot.
func errSnapshot(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrBadSnapshot}, args...)...)
}

// crcReader feeds everything read through it into a checksum.
type crcReader struct {
	r   *bufio.Reader
	h   hash.Hash32
	one [1]byte
}

func (c *crcReader) ReadByte() (byte, error) {
	b, err := c.r.ReadByte()
	if err == nil {
		c.one[0] = b
		c.h.Write(c.one[:])
	}
	return b, err
}

func (c *crcReader) readFull(p []byte) error {
	if _, err := io.ReadFull(c.r, p); err != nil {
		return err
	}
	c.h.Write(p)
	return nil
}

// readState parses a snapshot stream into a fresh state.
func readState(r io.Reader) (*state, error) {
	cr := &crcReader{r: bufio.NewReaderSize(r, 1<<20), h: crc32.New(crc32.MakeTable(crc32.Castagnoli))}
	head := make([]byte, len(snapshotMagic)+1)
	if err := cr.readFull(head); err != nil {
		return nil, errSnapshot("read header: %w", err)
	}
	if string(head[:len(snapshotMagic)]) != snapshotMagic {
		return nil, errSnapshot("bad magic %q", head[:len(snapshotMagic)])
	}
	version := head[len(snapshotMagic)]
	if version != 1 && version != snapshotVersion {
		return nil, errSnapshot("unsupported version %d", head[len(snapshotMagic)])
	}
	var buf []byte
	readRecord := func() ([]byte, error) {
		n, err := binary.ReadUvarint(cr)
		if err != nil {
			return nil, err
		}
		if n > maxRecord {
			return nil, fmt.Errorf("record of %d bytes exceeds the %d byte limit", n, maxRecord)
		}
		if uint64(cap(buf)) < n {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		return buf, cr.readFull(buf)
	}

	st := newState()
	rec, err := readRecord()
	if err != nil {
		return nil, errSnapshot("read header: %w", err)
	}
	d := newDecoder(rec, st.names, true)
	st.index = d.Uvarint()
	st.seq = d.Uvarint()
	njobs := d.Uvarint()
	nq := d.Count(1)
	for i := 0; i < nq && d.Err() == nil; i++ {
		name := d.name()
		var cfg QueueConfig
		d.queueConfig(&cfg)
		if _, dup := st.queues[name]; dup || !ValidQueueName(name) {
			d.Fail(fmt.Sprintf("bad or duplicate queue %q", name))
		}
		st.queue(name).cfg = cfg
	}
	d.End()
	if d.Err() != nil {
		return nil, errSnapshot("header: %w", d.Err())
	}

	if njobs > 0 {
		// Pre-size the job map, but never trust the header with more
		// than a few million entries up front.
		st.jobs = make(map[string]*Job, min(njobs, 1<<22))
	}
	for i := uint64(0); i < njobs; i++ {
		rec, err := readRecord()
		if err != nil {
			return nil, errSnapshot("read job %d of %d: %w", i, njobs, err)
		}
		if len(rec) < minJobSize {
			return nil, errSnapshot("job %d: record too short", i)
		}
		d := newDecoder(rec, st.names, true)
		j := d.job()
		d.End()
		if d.Err() != nil {
			return nil, errSnapshot("job %d: %w", i, d.Err())
		}
		if err := st.restoreJob(j); err != nil {
			return nil, errSnapshot("job %d (%s): %w", i, j.ID, err)
		}
	}
	for version >= 2 {
		rec, err := readRecord()
		if err != nil {
			return nil, errSnapshot("read section: %w", err)
		}
		if len(rec) == 0 {
			break
		}
		if err := st.restoreSection(rec); err != nil {
			return nil, errSnapshot("%w", err)
		}
	}
	if err := st.checkBlocked(); err != nil {
		return nil, errSnapshot("%w", err)
	}
	want := cr.h.Sum32()
	var sum [4]byte
	if _, err := io.ReadFull(cr.r, sum[:]); err != nil {
		return nil, errSnapshot("read checksum: %w", err)
	}
	if binary.BigEndian.Uint32(sum[:]) != want {
		return nil, errSnapshot("checksum mismatch")
	}
	if err := readTrailer(cr.r, st); err != nil {
		return nil, err
	}
	return st, nil
}

// restoreJob checks a decoded job for consistency and indexes it.
func (st *state) restoreJob(j *Job) error {
	switch {
	case j.ID == "":
		return errors.New("empty id")
	case st.jobs[j.ID] != nil:
		return errors.New("duplicate id")
	case j.State == StateInvalid || j.State > StateBlocked:
		return fmt.Errorf("invalid state %d", j.State)
	case st.queues[j.Queue] == nil:
		return fmt.Errorf("unknown queue %q", j.Queue)
	case j.Plugin == "":
		return errors.New("empty plugin")
	case j.State == StateRunning && (j.Node == "" || j.Token == 0):
		return errors.New("running without a lease")
	case j.Seq > st.seq || j.Token > st.seq:
		return errors.New("sequence beyond the header counter")
	}
	if j.holdsKey {
		if j.UniqueKey == "" {
			return errors.New("holds an empty unique key")
		}
		if _, dup := st.unique[j.UniqueKey]; dup {
			return fmt.Errorf("unique key %q held twice", j.UniqueKey)
		}
		st.unique[j.UniqueKey] = j.ID
	}
	st.jobs[j.ID] = j
	if !st.addIndex(j) {
		return errors.New("duplicate index key")
	}
	return nil
}
