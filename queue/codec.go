package queue

import (
	"encoding/binary"
	"fmt"
	"maps"
	"slices"

	"github.com/corral-dev/corral/internal/binenc"
)

// Entry wire format, version 1:
//
//	entry   = 0x01 now:varint ncmds:uvarint cmd*
//	cmd     = kind:byte body            (body per command, see appendCommand)
//	string  = len:uvarint bytes         (bytes likewise)
//	time    = unix-nanos:varint         (0 is the zero time)
//	map     = n:uvarint (key value)*    (keys sorted, unique)
//
// Integers are varints, counts and tokens uvarints. Decode accepts only the
// canonical encoding (minimal varints, sorted map keys, bools 0 or 1, no
// trailing bytes), so Encode(Decode(x)) == x for every accepted x.
const formatV1 byte = 1

// Encode serializes an entry for the raft log. It fails for an entry
// without a time (Now must be set by the leader) and for an unknown or nil
// command.
func Encode(e Entry) ([]byte, error) {
	if nanos(e.Now) == 0 {
		return nil, fmt.Errorf("%w: entry has no time", ErrBadCommand)
	}
	b := make([]byte, 0, sizeHint(e))
	b = append(b, formatV1)
	b = binary.AppendVarint(b, nanos(e.Now))
	b = binary.AppendUvarint(b, uint64(len(e.Cmds)))
	for i, c := range e.Cmds {
		var err error
		if b, err = appendCommand(b, c); err != nil {
			return nil, fmt.Errorf("encode command %d: %w", i, err)
		}
	}
	return b, nil
}

// Decode parses an entry written by Encode. Malformed input returns an
// error wrapping ErrBadCommand, never panics.
func Decode(data []byte) (Entry, error) {
	return decodeEntry(data, nil)
}

// decodeEntry decodes with an optional read-only interning table, so the
// names of a replicated entry share the store's strings.
func decodeEntry(data []byte, names map[string]string) (Entry, error) {
	if len(data) == 0 || data[0] != formatV1 {
		return Entry{}, fmt.Errorf("%w: unknown format version", ErrBadCommand)
	}
	d := newDecoder(data[1:], names, false)
	e := Entry{Now: d.Time()}
	if e.Now.IsZero() && d.Err() == nil {
		d.Fail("entry has no time")
	}
	n := d.Count(1)
	if n > 0 {
		e.Cmds = make([]Command, 0, n)
	}
	for i := 0; i < n && d.Err() == nil; i++ {
		e.Cmds = append(e.Cmds, d.command())
	}
	d.End()
	if d.Err() != nil {
		return Entry{}, d.Err()
	}
	return e, nil
}

func sizeHint(e Entry) int {
	n := 16
	for _, c := range e.Cmds {
		n += 16
		switch c := c.(type) {
		case *Submit:
			if c != nil {
				n += submitSizeHint(c.IDs, c.Specs, false)
			}
		case *SubmitDAG:
			if c != nil {
				n += submitSizeHint(c.IDs, c.Specs, true)
			}
		case *Complete:
			if c != nil {
				for i := range c.Reports {
					n += 64 + len(c.Reports[i].Result) + len(c.Reports[i].Error)
				}
			}
		case *Heartbeat:
			if c != nil {
				n += 40 * len(c.Leases)
			}
		}
	}
	return n
}

// submitSizeHint estimates the size of appendSubmit's body.
func submitSizeHint(ids []string, specs []Spec, deps bool) int {
	n := 28 * len(ids)
	for i := range specs {
		n += 64 + len(specs[i].Payload) + len(specs[i].Queue) + len(specs[i].Plugin) + len(specs[i].UniqueKey)
		if deps {
			n += 28 * len(specs[i].DependsOn)
		}
	}
	return n
}

// The codecs of the commands of periodic.go, rate.go, bulk.go and acl.go,
// tried after the kinds of this file: an encoder reports false for a
// command, a decoder returns nil for a kind, that is not its own.
var (
	commandEncoders = []func([]byte, Command) ([]byte, bool){
		appendPeriodicCommand, appendRateCommand, appendBulkCommand, appendACLCommand}
	commandDecoders = []func(*decoder, Kind) Command{
		(*decoder).periodicCommand, (*decoder).rateCommand, (*decoder).bulkCommand, (*decoder).aclCommand}
)

func appendCommand(b []byte, c Command) ([]byte, error) {
	switch c := c.(type) {
	case *Submit:
		if c == nil {
			break
		}
		return appendSubmit(append(b, byte(KindSubmit)), c.IDs, c.Specs, false), nil
	case *SubmitDAG:
		if c == nil {
			break
		}
		return appendSubmit(append(b, byte(KindSubmitDAG)), c.IDs, c.Specs, true), nil
	case *Claim:
		if c == nil {
			break
		}
		b = append(b, byte(KindClaim))
		b = binenc.AppendString(b, c.Node)
		b = appendStringMap(b, c.Tags)
		b = appendIntMap(b, c.Slots)
		b = binary.AppendVarint(b, int64(c.LeaseTTL))
		return b, nil
	case *Heartbeat:
		if c == nil {
			break
		}
		b = append(b, byte(KindHeartbeat))
		b = binenc.AppendString(b, c.Node)
		b = binary.AppendUvarint(b, uint64(len(c.Leases)))
		for _, l := range c.Leases {
			b = binenc.AppendString(b, l.ID)
			b = binary.AppendUvarint(b, l.Token)
		}
		b = binary.AppendVarint(b, int64(c.LeaseTTL))
		return b, nil
	case *Complete:
		if c == nil {
			break
		}
		b = append(b, byte(KindComplete))
		b = binary.AppendUvarint(b, uint64(len(c.Reports)))
		for i := range c.Reports {
			r := &c.Reports[i]
			b = binenc.AppendString(b, r.ID)
			b = binary.AppendUvarint(b, r.Token)
			b = binenc.AppendString(b, r.Node)
			b = append(b, byte(r.Outcome))
			b = binenc.AppendBytes(b, r.Result)
			b = binenc.AppendString(b, r.Error)
			b = binenc.AppendBool(b, r.NonRetryable)
		}
		return b, nil
	case *Cancel:
		if c == nil {
			break
		}
		b = append(b, byte(KindCancel))
		return binenc.AppendString(b, c.ID), nil
	case *Retry:
		if c == nil {
			break
		}
		b = append(b, byte(KindRetry))
		return binenc.AppendString(b, c.ID), nil
	case *SetQueue:
		if c == nil {
			break
		}
		b = append(b, byte(KindSetQueue))
		b = binenc.AppendString(b, c.Name)
		b = append(b, byte(c.Fields))
		return appendQueueConfig(b, &c.Config), nil
	case *FailNode:
		if c == nil {
			break
		}
		b = append(b, byte(KindFailNode))
		b = binenc.AppendString(b, c.Node)
		return binenc.AppendString(b, c.Reason), nil
	case *ExpireLeases:
		return append(b, byte(KindExpireLeases)), nil
	case *Purge:
		if c == nil {
			break
		}
		b = append(b, byte(KindPurge))
		return binary.AppendVarint(b, int64(c.Limit)), nil
	}
	for _, enc := range commandEncoders {
		if out, ok := enc(b, c); ok {
			return out, nil
		}
	}
	return b, fmt.Errorf("%w: unknown command %T", ErrBadCommand, c)
}

func (d *decoder) command() Command {
	k := Kind(d.Byte())
	switch k {
	case KindSubmitDAG:
		ids, specs := d.submit(true)
		return &SubmitDAG{IDs: ids, Specs: specs}
	case KindSubmit:
		ids, specs := d.submit(false)
		return &Submit{IDs: ids, Specs: specs}
	case KindClaim:
		return &Claim{Node: d.name(), Tags: d.nameMap(), Slots: d.intMap(), LeaseTTL: d.Dur()}
	case KindHeartbeat:
		c := &Heartbeat{Node: d.name()}
		if n := d.Count(2); n > 0 {
			c.Leases = make([]LeaseRef, n)
			for i := range c.Leases {
				c.Leases[i] = LeaseRef{ID: d.Str(), Token: d.Uvarint()}
			}
		}
		c.LeaseTTL = d.Dur()
		return c
	case KindComplete:
		c := &Complete{}
		if n := d.Count(7); n > 0 {
			c.Reports = make([]Report, n)
			for i := range c.Reports {
				r := &c.Reports[i]
				r.ID = d.Str()
				r.Token = d.Uvarint()
				r.Node = d.name()
				r.Outcome = Outcome(d.Byte())
				r.Result = d.bytes()
				r.Error = d.Str()
				r.NonRetryable = d.Bool()
			}
		}
		return c
	case KindCancel:
		return &Cancel{ID: d.Str()}
	case KindRetry:
		return &Retry{ID: d.Str()}
	case KindSetQueue:
		c := &SetQueue{Name: d.name(), Fields: QueueField(d.Byte())}
		d.queueConfig(&c.Config)
		return c
	case KindFailNode:
		return &FailNode{Node: d.name(), Reason: d.Str()}
	case KindExpireLeases:
		return &ExpireLeases{}
	case KindPurge:
		return &Purge{Limit: d.Int()}
	}
	for _, dec := range commandDecoders {
		if c := dec(d, k); c != nil {
			return c
		}
	}
	d.Fail("unknown command kind")
	return nil
}

// minSpecSize is the fewest bytes an encoded Spec takes.
const minSpecSize = 10

// appendSubmit encodes the body of a Submit or, with deps, a SubmitDAG:
// the IDs, then the specs, each followed by its parents when deps.
func appendSubmit(b []byte, ids []string, specs []Spec, deps bool) []byte {
	b = appendStrings(b, ids)
	b = binary.AppendUvarint(b, uint64(len(specs)))
	for i := range specs {
		b = appendSpec(b, &specs[i])
		if deps {
			b = appendStrings(b, specs[i].DependsOn)
		}
	}
	return b
}

// submit decodes a body written by appendSubmit.
func (d *decoder) submit(deps bool) (ids []string, specs []Spec) {
	ids = d.strings()
	size := minSpecSize
	if deps {
		size++
	}
	if n := d.Count(size); n > 0 {
		specs = make([]Spec, n)
		for i := range specs {
			d.spec(&specs[i])
			if deps {
				specs[i].DependsOn = d.strings()
			}
		}
	}
	return ids, specs
}

func appendSpec(b []byte, sp *Spec) []byte {
	b = binenc.AppendString(b, sp.Queue)
	b = binenc.AppendString(b, sp.Plugin)
	b = binenc.AppendBytes(b, sp.Payload)
	b = binary.AppendVarint(b, int64(sp.Priority))
	b = binary.AppendVarint(b, int64(sp.MaxAttempts))
	b = binary.AppendVarint(b, int64(sp.Timeout))
	b = binenc.AppendTime(b, sp.RunAt)
	b = binenc.AppendString(b, sp.UniqueKey)
	b = binary.AppendVarint(b, int64(sp.UniqueFor))
	return appendStringMap(b, sp.Constraints)
}

func (d *decoder) spec(sp *Spec) {
	sp.Queue = d.name()
	sp.Plugin = d.name()
	sp.Payload = d.bytes()
	sp.Priority = d.Int()
	sp.MaxAttempts = d.Int()
	sp.Timeout = d.Dur()
	sp.RunAt = d.Time()
	sp.UniqueKey = d.Str()
	sp.UniqueFor = d.Dur()
	sp.Constraints = d.nameMap()
}

func appendQueueConfig(b []byte, c *QueueConfig) []byte {
	b = binenc.AppendBool(b, c.Paused)
	b = binary.AppendVarint(b, int64(c.Concurrency))
	b = binary.AppendVarint(b, int64(c.MaxAttempts))
	b = binary.AppendVarint(b, int64(c.Retention))
	return binary.AppendVarint(b, int64(c.BackoffBase))
}

func (d *decoder) queueConfig(c *QueueConfig) {
	c.Paused = d.Bool()
	c.Concurrency = d.Int()
	c.MaxAttempts = d.Int()
	c.Retention = d.Dur()
	c.BackoffBase = d.Dur()
}

func appendStringMap(b []byte, m map[string]string) []byte {
	b = binary.AppendUvarint(b, uint64(len(m)))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		b = binenc.AppendString(b, k)
		b = binenc.AppendString(b, m[k])
	}
	return b
}

func appendIntMap(b []byte, m map[string]int) []byte {
	b = binary.AppendUvarint(b, uint64(len(m)))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		b = binenc.AppendString(b, k)
		b = binary.AppendVarint(b, int64(m[k]))
	}
	return b
}

// decoder reads the canonical encoding (binenc) with the queue's own
// fields on top; its errors wrap ErrBadCommand. After the first error
// every read returns a zero value, so callers check d.Err() once at the
// end.
type decoder struct {
	binenc.Decoder
	// names, if set, interns name fields; with add set unknown names are
	// added (Restore builds a fresh table).
	names map[string]string
	add   bool
}

// newDecoder returns a decoder of b interning names through the table
// names (none when nil), adding unknown ones when add is set.
func newDecoder(b []byte, names map[string]string, add bool) decoder {
	return decoder{Decoder: binenc.NewDecoder(b, ErrBadCommand), names: names, add: add}
}

// bytes returns a copy of the next byte field (nil when empty), so decoded
// values never alias the input buffer.
func (d *decoder) bytes() []byte {
	v := d.Raw()
	if len(v) == 0 {
		return nil
	}
	return slices.Clone(v)
}

// name is str for low-cardinality strings (queue, plugin, node, tags),
// interned through the table when one is set.
func (d *decoder) name() string {
	v := d.Raw()
	if d.names == nil || len(v) == 0 {
		return string(v)
	}
	if s, ok := d.names[string(v)]; ok {
		return s
	}
	s := string(v)
	if d.add {
		d.names[s] = s
	}
	return s
}

// nameMap decodes a string map written by appendStringMap; values are
// interned like names (tags and constraints repeat across jobs).
func (d *decoder) nameMap() map[string]string { return decodeMap(d, d.name) }

func (d *decoder) intMap() map[string]int { return decodeMap(d, d.Int) }

// decodeMap decodes a map written with sorted, unique keys (so encoding is
// canonical); value decodes one value.
func decodeMap[V any](d *decoder, value func() V) map[string]V {
	n := d.Count(2)
	if n == 0 {
		return nil
	}
	m := make(map[string]V, n)
	prev := ""
	for i := 0; i < n; i++ {
		k := d.name()
		if i > 0 && k <= prev {
			d.Fail("map keys not sorted")
			return nil
		}
		m[k] = value()
		prev = k
	}
	return m
}
