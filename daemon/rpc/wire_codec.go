package rpc

import (
	"encoding/binary"
	"fmt"
	"maps"
	"slices"

	"github.com/corral-dev/corral/internal/binenc"
	"github.com/corral-dev/corral/queue"
)

// The binary layout of the hot messages: Hello, Up and Down on the
// dispatch stream, ApplyRequest and ApplyResponse on the forward call.
// Every other message is msgpack (see frame.go). A body is
//
//	body       = 0xC1 message           (0xC1 is the one byte msgpack never uses)
//	hello      = node:string tags:map(string) restarted:bool running:list(leaseref)
//	up         = credit:opt(credit) heartbeat:list(leaseref) reports:list(report) seq:uvarint
//	credit     = free:map(varint) seen:map(uvarint) released:map(uvarint)
//	leaseref   = id:string token:uvarint
//	report     = id:string token:uvarint node:string outcome:byte result:bytes error:string nonretryable:bool
//	down       = welcome:bool leases:list(lease) abort:list(abort) acked:uvarint rejected:list(string)
//	lease      = id:string token:uvarint attempt:varint queue:string plugin:string payload:bytes timeout:varint
//	abort      = id:string token:uvarint reason:string
//	applyreq   = entry:bytes wait:varint
//	applyresp  = index:uvarint results:list(result) jobs:list(opt(job))
//	result     = err:opt(remoteerr) submitted:list(submitted) job:opt(job) count:varint more:bool resume:opt(filter)
//	submitted  = id:string existing:bool err:opt(remoteerr)
//	remoteerr  = code:string message:string
//	filter     = queue:string state:byte plugin:string createdbefore:time olderthan:varint through:uvarint limit:varint
//	job        = queue.AppendJob
//
// with
//
//	string     = len:uvarint byte*
//	bytes      = 0 (nil) | len+1:uvarint byte*
//	list(x)    = 0 (nil) | len+1:uvarint x*
//	map(v)     = 0 (nil) | len+1:uvarint (key:string v)*   (keys sorted, unique)
//	opt(x)     = 0 (nil pointer) | 1 x
//	bool       = 0 | 1
//	time       = unix-nanos:varint      (UTC; 0 is the zero time)
//
// Integers and durations are zigzag varints, counts, tokens and indexes
// uvarints. Slices, maps and byte strings keep nil apart from empty (an
// empty non-nil Up.Heartbeat asks for a heartbeat, and msgpack kept the
// difference too). What the layout does not keep: times arrive in UTC
// without a monotonic reading, the Unix epoch arrives as the zero time, and
// inside a *queue.Job empty slices and maps arrive as nil (queue.DecodeJob).
//
// Decoding accepts only the canonical encoding (minimal varints, bools and
// presence bytes 0 or 1, sorted unique map keys, no trailing bytes), so
// anything accepted re-encodes to the same bytes. Every count is checked
// against the bytes left before anything is allocated for it.

// wireMagic opens every binary body. msgpack never uses 0xC1, so a peer
// that expects msgpack for these messages fails on the first byte, and so
// does this side for a msgpack body.
const wireMagic = 0xC1

// wireAppender is a message with a binary layout; appendFrame uses it
// instead of msgpack.
type wireAppender interface {
	appendWire(b []byte) ([]byte, error)
}

// wireReader is a message with a binary layout; decode uses it instead of
// msgpack. readWire overwrites the whole message and returns errors that
// wrap ErrBadFrame.
type wireReader interface {
	readWire(body []byte) error
}

// Minimum encoded sizes of list elements, for the count checks.
const (
	minLeaseRef  = 2
	minReport    = 7
	minLease     = 7
	minAbort     = 3
	minString    = 1
	minResult    = 6
	minSubmitted = 3
	minOptJob    = 1
	minMapEntry  = 2
)

// readMessage runs read on a decoder over body and fails unless it
// consumed body exactly.
func readMessage(name string, body []byte, read func(d *wireDecoder)) error {
	if len(body) == 0 || body[0] != wireMagic {
		return fmt.Errorf("%w: %s: not a binary body", ErrBadFrame, name)
	}
	d := wireDecoder{Decoder: binenc.NewDecoder(body, nil)}
	d.Byte() // the magic, checked above
	read(&d)
	d.End()
	if err := d.Err(); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrBadFrame, name, err)
	}
	return nil
}

// appendWire implements wireAppender.
func (h *Hello) appendWire(b []byte) ([]byte, error) {
	b = append(b, wireMagic)
	b = binenc.AppendString(b, h.Node)
	b = appendMap(b, h.Tags, binenc.AppendString)
	b = binenc.AppendBool(b, h.Restarted)
	return appendList(b, h.Running, appendLeaseRef), nil
}

// readWire implements wireReader.
func (h *Hello) readWire(body []byte) error {
	return readMessage("hello", body, func(d *wireDecoder) {
		*h = Hello{Node: d.Str()}
		h.Tags = readMap(d, minMapEntry, (*wireDecoder).Str)
		h.Restarted = d.Bool()
		h.Running = readList(d, minLeaseRef, (*wireDecoder).leaseRef)
	})
}

// appendWire implements wireAppender.
func (u *Up) appendWire(b []byte) ([]byte, error) {
	b = append(b, wireMagic)
	if u.Credit == nil {
		b = append(b, 0)
	} else {
		b = append(b, 1)
		b = appendMap(b, u.Credit.Free, binenc.AppendInt)
		b = appendMap(b, u.Credit.Seen, binary.AppendUvarint)
		b = appendMap(b, u.Credit.Released, binary.AppendUvarint)
	}
	b = appendList(b, u.Heartbeat, appendLeaseRef)
	b = appendList(b, u.Reports, appendReport)
	return binary.AppendUvarint(b, u.Seq), nil
}

// readWire implements wireReader.
func (u *Up) readWire(body []byte) error {
	return readMessage("up", body, func(d *wireDecoder) {
		*u = Up{}
		if d.present() {
			u.Credit = &Credit{
				Free:     readMap(d, minMapEntry, (*wireDecoder).Int),
				Seen:     readMap(d, minMapEntry, (*wireDecoder).Uvarint),
				Released: readMap(d, minMapEntry, (*wireDecoder).Uvarint),
			}
		}
		u.Heartbeat = readList(d, minLeaseRef, (*wireDecoder).leaseRef)
		u.Reports = readList(d, minReport, (*wireDecoder).report)
		u.Seq = d.Uvarint()
	})
}

// appendWire implements wireAppender.
func (dn *Down) appendWire(b []byte) ([]byte, error) {
	b = append(b, wireMagic)
	b = binenc.AppendBool(b, dn.Welcome)
	b = appendList(b, dn.Leases, appendLease)
	b = appendList(b, dn.Abort, appendAbort)
	b = binary.AppendUvarint(b, dn.Acked)
	return appendList(b, dn.Rejected, appendStringAt), nil
}

// readWire implements wireReader.
func (dn *Down) readWire(body []byte) error {
	return readMessage("down", body, func(d *wireDecoder) {
		*dn = Down{Welcome: d.Bool()}
		dn.Leases = readList(d, minLease, (*wireDecoder).lease)
		dn.Abort = readList(d, minAbort, (*wireDecoder).abort)
		dn.Acked = d.Uvarint()
		dn.Rejected = readList(d, minString, (*wireDecoder).strAt)
	})
}

// appendWire implements wireAppender.
func (r *ApplyRequest) appendWire(b []byte) ([]byte, error) {
	b = append(b, wireMagic)
	b = appendBytes(b, r.Entry)
	return binenc.AppendDur(b, r.Wait), nil
}

// readWire implements wireReader.
func (r *ApplyRequest) readWire(body []byte) error {
	return readMessage("apply request", body, func(d *wireDecoder) {
		*r = ApplyRequest{Entry: d.bytes(), Wait: d.Dur()}
	})
}

// appendWire implements wireAppender.
func (r *ApplyResponse) appendWire(b []byte) ([]byte, error) {
	b = append(b, wireMagic)
	b = binary.AppendUvarint(b, r.Index)
	b = appendList(b, r.Results, appendResult)
	return appendList(b, r.Jobs, appendOptJob), nil
}

// readWire implements wireReader.
func (r *ApplyResponse) readWire(body []byte) error {
	return readMessage("apply response", body, func(d *wireDecoder) {
		*r = ApplyResponse{Index: d.Uvarint()}
		r.Results = readList(d, minResult, (*wireDecoder).result)
		r.Jobs = readList(d, minOptJob, (*wireDecoder).optJob)
	})
}

// Element encoders, one per type that appears in a list or behind a
// pointer.

func appendLeaseRef(b []byte, l *queue.LeaseRef) []byte {
	b = binenc.AppendString(b, l.ID)
	return binary.AppendUvarint(b, l.Token)
}

func appendReport(b []byte, r *queue.Report) []byte {
	b = binenc.AppendString(b, r.ID)
	b = binary.AppendUvarint(b, r.Token)
	b = binenc.AppendString(b, r.Node)
	b = append(b, byte(r.Outcome))
	b = appendBytes(b, r.Result)
	b = binenc.AppendString(b, r.Error)
	return binenc.AppendBool(b, r.NonRetryable)
}

func appendLease(b []byte, l *Lease) []byte {
	b = binenc.AppendString(b, l.ID)
	b = binary.AppendUvarint(b, l.Token)
	b = binenc.AppendInt(b, l.Attempt)
	b = binenc.AppendString(b, l.Queue)
	b = binenc.AppendString(b, l.Plugin)
	b = appendBytes(b, l.Payload)
	return binenc.AppendDur(b, l.Timeout)
}

func appendAbort(b []byte, a *queue.Abort) []byte {
	b = binenc.AppendString(b, a.ID)
	b = binary.AppendUvarint(b, a.Token)
	return binenc.AppendString(b, a.Reason)
}

func appendResult(b []byte, r *Result) []byte {
	b = appendRemoteError(b, r.Err)
	b = appendList(b, r.Submitted, appendSubmitted)
	b = appendOptJob(b, &r.Job)
	b = binenc.AppendInt(b, r.Count)
	b = binenc.AppendBool(b, r.More)
	if r.Resume == nil {
		return append(b, 0)
	}
	f := r.Resume
	b = append(b, 1)
	b = binenc.AppendString(b, f.Queue)
	b = append(b, byte(f.State))
	b = binenc.AppendString(b, f.Plugin)
	b = binenc.AppendTime(b, f.CreatedBefore)
	b = binenc.AppendDur(b, f.OlderThan)
	b = binary.AppendUvarint(b, f.Through)
	return binenc.AppendInt(b, f.Limit)
}

func appendSubmitted(b []byte, s *Submitted) []byte {
	b = binenc.AppendString(b, s.ID)
	b = binenc.AppendBool(b, s.Existing)
	return appendRemoteError(b, s.Err)
}

func appendRemoteError(b []byte, e *RemoteError) []byte {
	if e == nil {
		return append(b, 0)
	}
	b = append(b, 1)
	b = binenc.AppendString(b, e.Code)
	return binenc.AppendString(b, e.Message)
}

func appendOptJob(b []byte, j **queue.Job) []byte {
	if *j == nil {
		return append(b, 0)
	}
	return queue.AppendJob(append(b, 1), *j)
}

// Optional fields and collections: 0 for nil, else the count plus one.

// appendStringAt is binenc.AppendString for appendList.
func appendStringAt(b []byte, s *string) []byte { return binenc.AppendString(b, *s) }

// appendBytes writes 0 for nil, else the length plus one and the bytes.
func appendBytes(b, p []byte) []byte {
	if p == nil {
		return append(b, 0)
	}
	b = binary.AppendUvarint(b, uint64(len(p))+1)
	return append(b, p...)
}

// appendList writes 0 for a nil slice, else its length plus one and each
// element.
func appendList[T any](b []byte, s []T, elem func([]byte, *T) []byte) []byte {
	if s == nil {
		return append(b, 0)
	}
	b = binary.AppendUvarint(b, uint64(len(s))+1)
	for i := range s {
		b = elem(b, &s[i])
	}
	return b
}

// appendMap writes 0 for a nil map, else its size plus one and the
// entries in key order.
func appendMap[V any](b []byte, m map[string]V, val func([]byte, V) []byte) []byte {
	if m == nil {
		return append(b, 0)
	}
	b = binary.AppendUvarint(b, uint64(len(m))+1)
	for _, k := range slices.Sorted(maps.Keys(m)) {
		b = binenc.AppendString(b, k)
		b = val(b, m[k])
	}
	return b
}

// wireDecoder reads the layout: binenc's primitives (shared with the
// queue codec) plus the node plane's lists, maps and name sharing. After
// the first error every read returns a zero value, so callers check Err
// once at the end.
type wireDecoder struct {
	binenc.Decoder
	// names are the last few names decoded (queue, plugin, node); a
	// message repeats them in every element, so name shares one string.
	names [4]string
}

// present reads an opt(x) presence byte.
func (d *wireDecoder) present() bool { return d.Bool() }

// name is str for low-cardinality strings: a value equal to a recent one
// shares its string instead of allocating another.
func (d *wireDecoder) name() string {
	v := d.Raw()
	if len(v) == 0 {
		return ""
	}
	for _, s := range d.names {
		if s == string(v) {
			return s
		}
	}
	s := string(v)
	copy(d.names[1:], d.names[:len(d.names)-1])
	d.names[0] = s
	return s
}

// strAt is str for readList.
func (d *wireDecoder) strAt(s *string) { *s = d.Str() }

// bytes reads a field written by appendBytes; the result is a copy.
func (d *wireDecoder) bytes() []byte {
	n, ok := d.OptCount(1)
	if !ok {
		return nil
	}
	v := make([]byte, n)
	copy(v, d.Next(n))
	return v
}

// readList reads a list written by appendList.
func readList[T any](d *wireDecoder, min int, elem func(*wireDecoder, *T)) []T {
	n, ok := d.OptCount(min)
	if !ok {
		return nil
	}
	s := make([]T, n)
	for i := range s {
		if d.Err() != nil {
			return nil
		}
		elem(d, &s[i])
	}
	return s
}

// readMap reads a map written by appendMap, rejecting unsorted or
// duplicate keys so the encoding stays canonical.
func readMap[V any](d *wireDecoder, min int, val func(*wireDecoder) V) map[string]V {
	n, ok := d.OptCount(min)
	if !ok {
		return nil
	}
	m := make(map[string]V, n)
	prev := ""
	for i := 0; i < n && d.Err() == nil; i++ {
		k := d.name()
		if i > 0 && k <= prev {
			d.Fail("map keys not sorted")
			return nil
		}
		m[k] = val(d)
		prev = k
	}
	return m
}

// Element decoders, the inverses of the encoders above.

func (d *wireDecoder) leaseRef(l *queue.LeaseRef) {
	l.ID = d.Str()
	l.Token = d.Uvarint()
}

func (d *wireDecoder) report(r *queue.Report) {
	r.ID = d.Str()
	r.Token = d.Uvarint()
	r.Node = d.name()
	r.Outcome = queue.Outcome(d.Byte())
	r.Result = d.bytes()
	r.Error = d.Str()
	r.NonRetryable = d.Bool()
}

func (d *wireDecoder) lease(l *Lease) {
	l.ID = d.Str()
	l.Token = d.Uvarint()
	l.Attempt = d.Int()
	l.Queue = d.name()
	l.Plugin = d.name()
	l.Payload = d.bytes()
	l.Timeout = d.Dur()
}

func (d *wireDecoder) abort(a *queue.Abort) {
	a.ID = d.Str()
	a.Token = d.Uvarint()
	a.Reason = d.Str()
}

func (d *wireDecoder) result(r *Result) {
	r.Err = d.remoteError()
	r.Submitted = readList(d, minSubmitted, (*wireDecoder).submitted)
	d.optJob(&r.Job)
	r.Count = d.Int()
	r.More = d.Bool()
	if d.present() {
		r.Resume = &queue.BulkFilter{
			Queue:         d.Str(),
			State:         queue.State(d.Byte()),
			Plugin:        d.Str(),
			CreatedBefore: d.Time(),
			OlderThan:     d.Dur(),
			Through:       d.Uvarint(),
			Limit:         d.Int(),
		}
	}
}

func (d *wireDecoder) submitted(s *Submitted) {
	s.ID = d.Str()
	s.Existing = d.Bool()
	s.Err = d.remoteError()
}

func (d *wireDecoder) remoteError() *RemoteError {
	if !d.present() {
		return nil
	}
	return &RemoteError{Code: d.Str(), Message: d.Str()}
}

// optJob reads an opt(job) through queue.DecodeJob.
func (d *wireDecoder) optJob(j **queue.Job) {
	if !d.present() {
		return
	}
	job, n, err := queue.DecodeJob(d.Peek())
	if err != nil {
		d.Fail(fmt.Sprintf("job: %v", err))
		return
	}
	d.Next(n)
	*j = job
}
