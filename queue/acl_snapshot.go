package queue

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"maps"
	"slices"

	"github.com/corral-dev/corral/internal/binenc"
)

// The ACL section of a snapshot is an optional trailer after the main
// checksum, written only when there is ACL state (so snapshots of a
// cluster that never used ACLs are byte for byte the version 1 format):
//
//	"CRLA" len:uvarint body crc
//	body = bootstrapped:bool npolicies:uvarint policy* ntokens:uvarint token*
//	crc  = 4 bytes big endian, CRC-32C of body
//
// A reader from before ACLs rejects such a snapshot as "trailing data
// after checksum" and keeps its state: it never restores a cluster's
// tokens away silently.
const aclSectionMagic = "CRLA"

// aclSnapshot is the captured ACL state.
type aclSnapshot struct {
	bootstrapped bool
	policies     []*ACLPolicy
	tokens       []*ACLToken
}

// snapshotACL captures a's state (nil when there is nothing to write).
func (a *aclState) snapshot() *aclSnapshot {
	if a == nil || (!a.bootstrapped && len(a.policies) == 0 && len(a.tokens) == 0) {
		return nil
	}
	sn := &aclSnapshot{bootstrapped: a.bootstrapped}
	for _, name := range slices.Sorted(maps.Keys(a.policies)) {
		sn.policies = append(sn.policies, a.policies[name])
	}
	for _, id := range slices.Sorted(maps.Keys(a.tokens)) {
		sn.tokens = append(sn.tokens, a.tokens[id])
	}
	return sn
}

// writeACLSection writes the ACL trailer to w (nothing when sn is nil).
func (sn *aclSnapshot) writeTo(w io.Writer) error {
	if sn == nil {
		return nil
	}
	body := binenc.AppendBool(nil, sn.bootstrapped)
	body = binary.AppendUvarint(body, uint64(len(sn.policies)))
	for _, p := range sn.policies {
		body = appendACLPolicy(body, p)
	}
	body = binary.AppendUvarint(body, uint64(len(sn.tokens)))
	for _, t := range sn.tokens {
		body = appendACLToken(body, t)
	}
	out := append([]byte(aclSectionMagic), binary.AppendUvarint(nil, uint64(len(body)))...)
	out = append(out, body...)
	out = binary.BigEndian.AppendUint32(out, crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli)))
	if _, err := w.Write(out); err != nil {
		return fmt.Errorf("write snapshot acl section: %w", err)
	}
	return nil
}

// readTrailer reads what follows the main checksum: nothing, or the ACL
// section, then the end of the stream.
func readTrailer(r *bufio.Reader, st *state) error {
	head := make([]byte, len(aclSectionMagic))
	n, err := io.ReadFull(r, head)
	if n == 0 && errors.Is(err, io.EOF) {
		return nil
	}
	if err != nil || string(head) != aclSectionMagic {
		return errSnapshot("trailing data after checksum")
	}
	size, err := binary.ReadUvarint(r)
	if err != nil || size > maxRecord {
		return errSnapshot("acl section: bad length")
	}
	body := make([]byte, size)
	if _, err := io.ReadFull(r, body); err != nil {
		return errSnapshot("acl section: %w", err)
	}
	var sum [4]byte
	if _, err := io.ReadFull(r, sum[:]); err != nil {
		return errSnapshot("acl section checksum: %w", err)
	}
	if binary.BigEndian.Uint32(sum[:]) != crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli)) {
		return errSnapshot("acl section: checksum mismatch")
	}
	if _, err := r.ReadByte(); !errors.Is(err, io.EOF) {
		return errSnapshot("trailing data after the acl section")
	}
	d := newDecoder(body, nil, false)
	a := newACLState()
	a.bootstrapped = d.Bool()
	for i, n := 0, d.Count(4); i < n && d.Err() == nil; i++ {
		p := &ACLPolicy{}
		d.aclPolicy(p)
		if a.policies[p.Name] != nil {
			d.Fail("duplicate acl policy " + p.Name)
		}
		a.policies[p.Name] = p
	}
	for i, n := 0, d.Count(4); i < n && d.Err() == nil; i++ {
		t := &ACLToken{}
		d.aclToken(t)
		if a.tokens[t.AccessorID] != nil || a.bySecret[t.SecretHash] != "" {
			d.Fail("duplicate acl token " + t.AccessorID)
		}
		a.tokens[t.AccessorID] = t
		a.bySecret[t.SecretHash] = t.AccessorID
	}
	d.End()
	if d.Err() != nil {
		return errSnapshot("acl section: %w", d.Err())
	}
	st.acl = a
	return nil
}
