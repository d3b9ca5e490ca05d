package queue

// A job on the node-to-node wire (daemon/rpc): the snapshot's job record
// (see appendJob) followed by the job's parents,
//
//	job = record parents:n:uvarint string*
//
// because the snapshot keeps Spec.DependsOn in a section of its own. The
// snapshot format itself is unchanged.

// AppendJob appends the wire encoding of j to b and returns the extended
// buffer. DecodeJob reads it back. Empty slices and maps (Payload, Result,
// Constraints, DependsOn, Attempts) travel as absent and decode as nil, and
// times decode as UTC without a monotonic reading, as everywhere in the
// queue codec.
func AppendJob(b []byte, j *Job) []byte {
	b = appendJob(b, j)
	return appendStrings(b, j.DependsOn)
}

// DecodeJob decodes one job written by AppendJob from the start of b and
// returns it with the number of bytes it took; bytes after it are left to
// the caller. It accepts only the canonical encoding, so AppendJob of the
// result reproduces b[:n]. Decoded strings and byte slices are copies: b
// may be reused. Malformed input returns an error wrapping ErrBadCommand,
// never panics, and allocates no more than b can justify.
func DecodeJob(b []byte) (*Job, int, error) {
	d := newDecoder(b, nil, false)
	j := d.job()
	j.DependsOn = d.strings()
	if d.Err() != nil {
		return nil, 0, d.Err()
	}
	return j, len(b) - d.Len(), nil
}
