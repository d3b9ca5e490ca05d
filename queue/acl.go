package queue

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/corral-dev/corral/internal/binenc"
)

// ACL command kinds. They start at 20 so the queue's own kinds can grow
// below them; values are part of the log format.
const (
	KindACLBootstrap    Kind = 20 // *ACLBootstrap
	KindACLSetPolicy    Kind = 21 // *ACLSetPolicy
	KindACLDeletePolicy Kind = 22 // *ACLDeletePolicy
	KindACLSetToken     Kind = 23 // *ACLSetToken
	KindACLDeleteToken  Kind = 24 // *ACLDeleteToken
)

// ACL errors.
var (
	// ErrACLBootstrapped means the ACL system was already bootstrapped.
	ErrACLBootstrapped = errors.New("acl bootstrap already done: use the management token it returned, or create tokens with it")
	// ErrACLNotFound means no policy or token has that name or accessor.
	ErrACLNotFound = errors.New("acl object not found")
	// ErrBadACL means an ACL command is invalid; it is wrapped with details.
	ErrBadACL = errors.New("invalid acl object")
)

// ACLPolicy is a named set of rules, kept as the HCL text the user wrote
// (the daemon parses it; the FSM only stores it).
type ACLPolicy struct {
	Name        string
	Description string
	Rules       string
	// ModifyIndex is the raft index of the last change.
	ModifyIndex uint64
}

// ACLToken is a token: its public AccessorID, the SHA-256 of its secret
// (the secret itself is never stored or replicated), and what it grants.
type ACLToken struct {
	AccessorID string
	// SecretHash is the hex SHA-256 of the secret.
	SecretHash  string
	Description string
	// Policies are policy names.
	Policies []string
	// Management grants everything.
	Management bool
	// CreateIndex is the raft index of the token's creation.
	CreateIndex uint64
}

// ACLBootstrap creates the first management token, once.
type ACLBootstrap struct{ Token ACLToken }

// ACLSetPolicy creates or replaces a policy.
type ACLSetPolicy struct{ Policy ACLPolicy }

// ACLDeletePolicy deletes a policy.
type ACLDeletePolicy struct{ Name string }

// ACLSetToken creates a token (an accessor or secret already in use is
// refused).
type ACLSetToken struct{ Token ACLToken }

// ACLDeleteToken deletes a token; the last management token cannot be
// deleted.
type ACLDeleteToken struct{ AccessorID string }

// Kind implements Command.
func (*ACLBootstrap) Kind() Kind { return KindACLBootstrap }

// Kind implements Command.
func (*ACLSetPolicy) Kind() Kind { return KindACLSetPolicy }

// Kind implements Command.
func (*ACLDeletePolicy) Kind() Kind { return KindACLDeletePolicy }

// Kind implements Command.
func (*ACLSetToken) Kind() Kind { return KindACLSetToken }

// Kind implements Command.
func (*ACLDeleteToken) Kind() Kind { return KindACLDeleteToken }

// aclState is the replicated ACL state. Published policies and tokens are
// immutable: a change replaces them.
type aclState struct {
	bootstrapped bool
	policies     map[string]*ACLPolicy
	tokens       map[string]*ACLToken // by accessor
	bySecret     map[string]string    // secret hash -> accessor
}

func newACLState() *aclState {
	return &aclState{policies: map[string]*ACLPolicy{}, tokens: map[string]*ACLToken{}, bySecret: map[string]string{}}
}

// aclOf returns st's ACL state, creating it on first use.
func (st *state) aclOf() *aclState {
	if st.acl == nil {
		st.acl = newACLState()
	}
	return st.acl
}

// applyACL applies an ACL command; ok is false for other commands.
func (st *state) applyACL(c Command) (Result, bool) {
	switch c := c.(type) {
	case *ACLBootstrap:
		if c == nil {
			return Result{}, false
		}
		a := st.aclOf()
		if a.bootstrapped {
			return Result{Err: ErrACLBootstrapped}, true
		}
		if !c.Token.Management {
			return Result{Err: fmt.Errorf("%w: the bootstrap token must be a management token", ErrBadACL)}, true
		}
		if err := a.addToken(c.Token, st.index); err != nil {
			return Result{Err: err}, true
		}
		a.bootstrapped = true
		return Result{}, true
	case *ACLSetPolicy:
		if c == nil {
			return Result{}, false
		}
		a := st.aclOf()
		p := c.Policy
		if !ValidQueueName(p.Name) {
			return Result{Err: badName(ErrBadACL, "policy name", p.Name)}, true
		}
		p.ModifyIndex = st.index
		a.policies[p.Name] = &p
		return Result{}, true
	case *ACLDeletePolicy:
		if c == nil {
			return Result{}, false
		}
		a := st.aclOf()
		if _, ok := a.policies[c.Name]; !ok {
			return Result{Err: fmt.Errorf("policy %s: %w", c.Name, ErrACLNotFound)}, true
		}
		delete(a.policies, c.Name)
		return Result{}, true
	case *ACLSetToken:
		if c == nil {
			return Result{}, false
		}
		a := st.aclOf()
		return Result{Err: a.addToken(c.Token, st.index)}, true
	case *ACLDeleteToken:
		if c == nil {
			return Result{}, false
		}
		a := st.aclOf()
		t, ok := a.tokens[c.AccessorID]
		if !ok {
			return Result{Err: fmt.Errorf("token %s: %w", c.AccessorID, ErrACLNotFound)}, true
		}
		if t.Management && a.managementTokens() == 1 {
			return Result{Err: fmt.Errorf("%w: token %s is the last management token; create another first", ErrBadACL, c.AccessorID)}, true
		}
		delete(a.tokens, c.AccessorID)
		delete(a.bySecret, t.SecretHash)
		return Result{}, true
	}
	return Result{}, false
}

// addToken checks and stores a new token.
func (a *aclState) addToken(t ACLToken, index uint64) error {
	switch {
	case t.AccessorID == "" || len(t.AccessorID) > 64:
		return fmt.Errorf("%w: accessor id must be 1-64 characters", ErrBadACL)
	case len(t.SecretHash) != 64 || strings.Trim(t.SecretHash, "0123456789abcdef") != "":
		return fmt.Errorf("%w: secret hash must be 64 lower-case hex digits", ErrBadACL)
	case a.tokens[t.AccessorID] != nil:
		return fmt.Errorf("%w: accessor id %s already exists", ErrBadACL, t.AccessorID)
	case a.bySecret[t.SecretHash] != "":
		return fmt.Errorf("%w: secret already in use", ErrBadACL)
	}
	for _, p := range t.Policies {
		if a.policies[p] == nil {
			return fmt.Errorf("%w: policy %q does not exist", ErrBadACL, p)
		}
	}
	t.Policies = slices.Clone(t.Policies)
	t.CreateIndex = index
	a.tokens[t.AccessorID] = &t
	a.bySecret[t.SecretHash] = t.AccessorID
	return nil
}

func (a *aclState) managementTokens() int {
	n := 0
	for _, t := range a.tokens {
		if t.Management {
			n++
		}
	}
	return n
}

// ACLBootstrapped reports whether ACL bootstrap has been done.
func (s *Store) ACLBootstrapped() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.st.acl != nil && s.st.acl.bootstrapped
}

// ACLTokenBySecretHash returns the token whose secret hashes to h.
func (s *Store) ACLTokenBySecretHash(h string) (*ACLToken, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.st.acl == nil {
		return nil, false
	}
	t, ok := s.st.acl.tokens[s.st.acl.bySecret[h]]
	return t, ok
}

// ACLPolicy returns the named policy.
func (s *Store) ACLPolicy(name string) (*ACLPolicy, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.st.acl == nil {
		return nil, false
	}
	p, ok := s.st.acl.policies[name]
	return p, ok
}

// ACLPolicies returns every policy, by name.
func (s *Store) ACLPolicies() []*ACLPolicy {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.st.acl == nil {
		return nil
	}
	out := make([]*ACLPolicy, 0, len(s.st.acl.policies))
	for _, name := range slices.Sorted(maps.Keys(s.st.acl.policies)) {
		out = append(out, s.st.acl.policies[name])
	}
	return out
}

// ACLTokens returns every token, by accessor ID.
func (s *Store) ACLTokens() []*ACLToken {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.st.acl == nil {
		return nil
	}
	out := make([]*ACLToken, 0, len(s.st.acl.tokens))
	for _, id := range slices.Sorted(maps.Keys(s.st.acl.tokens)) {
		out = append(out, s.st.acl.tokens[id])
	}
	return out
}

// appendACLCommand encodes an ACL command; ok is false for other commands.
func appendACLCommand(b []byte, c Command) (_ []byte, ok bool) {
	switch c := c.(type) {
	case *ACLBootstrap:
		if c != nil {
			return appendACLToken(append(b, byte(KindACLBootstrap)), &c.Token), true
		}
	case *ACLSetPolicy:
		if c != nil {
			return appendACLPolicy(append(b, byte(KindACLSetPolicy)), &c.Policy), true
		}
	case *ACLDeletePolicy:
		if c != nil {
			return binenc.AppendString(append(b, byte(KindACLDeletePolicy)), c.Name), true
		}
	case *ACLSetToken:
		if c != nil {
			return appendACLToken(append(b, byte(KindACLSetToken)), &c.Token), true
		}
	case *ACLDeleteToken:
		if c != nil {
			return binenc.AppendString(append(b, byte(KindACLDeleteToken)), c.AccessorID), true
		}
	}
	return b, false
}

// aclCommand decodes the body of an ACL command of kind k (nil for
// another kind).
func (d *decoder) aclCommand(k Kind) Command {
	switch k {
	case KindACLBootstrap:
		c := &ACLBootstrap{}
		d.aclToken(&c.Token)
		return c
	case KindACLSetPolicy:
		c := &ACLSetPolicy{}
		d.aclPolicy(&c.Policy)
		return c
	case KindACLDeletePolicy:
		return &ACLDeletePolicy{Name: d.Str()}
	case KindACLSetToken:
		c := &ACLSetToken{}
		d.aclToken(&c.Token)
		return c
	case KindACLDeleteToken:
		return &ACLDeleteToken{AccessorID: d.Str()}
	}
	return nil
}

func appendACLPolicy(b []byte, p *ACLPolicy) []byte {
	b = binenc.AppendString(b, p.Name)
	b = binenc.AppendString(b, p.Description)
	b = binenc.AppendString(b, p.Rules)
	return binary.AppendUvarint(b, p.ModifyIndex)
}

func (d *decoder) aclPolicy(p *ACLPolicy) {
	p.Name, p.Description, p.Rules, p.ModifyIndex = d.Str(), d.Str(), d.Str(), d.Uvarint()
}

func appendACLToken(b []byte, t *ACLToken) []byte {
	b = binenc.AppendString(b, t.AccessorID)
	b = binenc.AppendString(b, t.SecretHash)
	b = binenc.AppendString(b, t.Description)
	b = binary.AppendUvarint(b, uint64(len(t.Policies)))
	for _, p := range t.Policies {
		b = binenc.AppendString(b, p)
	}
	b = binenc.AppendBool(b, t.Management)
	return binary.AppendUvarint(b, t.CreateIndex)
}

func (d *decoder) aclToken(t *ACLToken) {
	t.AccessorID, t.SecretHash, t.Description = d.Str(), d.Str(), d.Str()
	if n := d.Count(1); n > 0 {
		t.Policies = make([]string, n)
		for i := range t.Policies {
			t.Policies[i] = d.Str()
		}
	}
	t.Management = d.Bool()
	t.CreateIndex = d.Uvarint()
}
