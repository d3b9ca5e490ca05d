package queue

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func hashOf(c byte) string { return strings.Repeat(string(c), 64) }

// TestACLBootstrapOnce: the first bootstrap stores a management token; a
// second one is refused and changes nothing.
func TestACLBootstrapOnce(t *testing.T) {
	h := newHarness(t)
	if res := h.one(&ACLBootstrap{Token: ACLToken{AccessorID: "a1", SecretHash: hashOf('a'), Management: true}}); res.Err != nil {
		t.Fatalf("bootstrap: %v", res.Err)
	}
	if !h.s.ACLBootstrapped() {
		t.Fatalf("not bootstrapped after bootstrap")
	}
	res := h.one(&ACLBootstrap{Token: ACLToken{AccessorID: "a2", SecretHash: hashOf('b'), Management: true}})
	if !errors.Is(res.Err, ErrACLBootstrapped) {
		t.Fatalf("second bootstrap: %v, want ErrACLBootstrapped", res.Err)
	}
	if _, ok := h.s.ACLTokenBySecretHash(hashOf('b')); ok {
		t.Fatalf("refused bootstrap stored its token")
	}
	tok, ok := h.s.ACLTokenBySecretHash(hashOf('a'))
	if !ok || !tok.Management || tok.AccessorID != "a1" {
		t.Fatalf("bootstrap token %+v, %v", tok, ok)
	}
}

// TestACLTokensAndPolicies: tokens need existing policies and unique
// secrets; the last management token cannot be deleted.
func TestACLTokensAndPolicies(t *testing.T) {
	h := newHarness(t)
	h.one(&ACLBootstrap{Token: ACLToken{AccessorID: "root", SecretHash: hashOf('a'), Management: true}})
	if res := h.one(&ACLSetToken{Token: ACLToken{AccessorID: "t1", SecretHash: hashOf('b'), Policies: []string{"nope"}}}); !errors.Is(res.Err, ErrBadACL) {
		t.Fatalf("token with unknown policy: %v", res.Err)
	}
	if res := h.one(&ACLSetPolicy{Policy: ACLPolicy{Name: "ops", Rules: `operator = "read"`}}); res.Err != nil {
		t.Fatal(res.Err)
	}
	if res := h.one(&ACLSetToken{Token: ACLToken{AccessorID: "t1", SecretHash: hashOf('b'), Policies: []string{"ops"}}}); res.Err != nil {
		t.Fatal(res.Err)
	}
	if res := h.one(&ACLSetToken{Token: ACLToken{AccessorID: "t2", SecretHash: hashOf('b')}}); !errors.Is(res.Err, ErrBadACL) {
		t.Fatalf("reused secret: %v", res.Err)
	}
	if res := h.one(&ACLDeleteToken{AccessorID: "root"}); !errors.Is(res.Err, ErrBadACL) {
		t.Fatalf("deleting the last management token: %v", res.Err)
	}
	if res := h.one(&ACLDeleteToken{AccessorID: "t1"}); res.Err != nil {
		t.Fatal(res.Err)
	}
	if _, ok := h.s.ACLTokenBySecretHash(hashOf('b')); ok {
		t.Fatalf("deleted token still resolves")
	}
	if res := h.one(&ACLDeletePolicy{Name: "ops"}); res.Err != nil {
		t.Fatal(res.Err)
	}
	if res := h.one(&ACLDeletePolicy{Name: "ops"}); !errors.Is(res.Err, ErrACLNotFound) {
		t.Fatalf("deleting a missing policy: %v", res.Err)
	}
}

// TestACLSnapshotSection: ACL state survives a snapshot; a snapshot of a
// store without ACL state has no trailer (the version 1 format), and a
// reader from before ACLs (simulated: trailer bytes it does not know)
// refuses the stream rather than dropping tokens.
func TestACLSnapshotSection(t *testing.T) {
	h := busyHarness(t)
	plain := snapshotBytes(t, h.s)
	if bytes.Contains(plain, []byte(aclSectionMagic)) {
		t.Fatalf("snapshot without acl state has an acl section")
	}
	h.one(&ACLBootstrap{Token: ACLToken{AccessorID: "root", SecretHash: hashOf('a'), Management: true}})
	h.one(&ACLSetPolicy{Policy: ACLPolicy{Name: "ops", Description: "d", Rules: `queue "a" { policy = "write" }`}})
	h.one(&ACLSetToken{Token: ACLToken{AccessorID: "t1", SecretHash: hashOf('b'), Policies: []string{"ops"}, Description: "ci"}})
	data := snapshotBytes(t, h.s)
	r := New()
	if err := r.Restore(bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if !r.ACLBootstrapped() || !reflect.DeepEqual(r.ACLPolicies(), h.s.ACLPolicies()) || !reflect.DeepEqual(r.ACLTokens(), h.s.ACLTokens()) {
		t.Fatalf("acl state not restored: %+v %+v", r.ACLPolicies(), r.ACLTokens())
	}
	if _, ok := r.ACLTokenBySecretHash(hashOf('b')); !ok {
		t.Fatalf("restored token does not resolve by secret hash")
	}
	if err := New().Restore(bytes.NewReader(append(data, 0))); !errors.Is(err, ErrBadSnapshot) {
		t.Fatalf("trailing byte after the acl section: %v", err)
	}
	bad := append([]byte(nil), data...)
	bad[len(bad)-1] ^= 1
	if err := New().Restore(bytes.NewReader(bad)); !errors.Is(err, ErrBadSnapshot) {
		t.Fatalf("corrupt acl section: %v", err)
	}
}

// TestACLCodecRoundTrip: every ACL command encodes and decodes to itself,
// and every truncation of them is rejected.
func TestACLCodecRoundTrip(t *testing.T) {
	cmds := []Command{
		&ACLBootstrap{Token: ACLToken{AccessorID: "a", SecretHash: hashOf('a'), Management: true, Description: "boot"}},
		&ACLSetPolicy{Policy: ACLPolicy{Name: "p", Description: "d", Rules: "agent = \"read\""}},
		&ACLDeletePolicy{Name: "p"},
		&ACLSetToken{Token: ACLToken{AccessorID: "b", SecretHash: hashOf('b'), Policies: []string{"p", "q"}}},
		&ACLDeleteToken{AccessorID: "b"},
	}
	e := roundTrip(t, Entry{Now: t0, Cmds: cmds})
	if !reflect.DeepEqual(e.Cmds, cmds) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", e.Cmds, cmds)
	}
}
