package acl

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"

	"github.com/corral-dev/corral/queue"
)

// ErrTokenNotFound means no token has the given secret.
var ErrTokenNotFound = errors.New("acl token not found")

// Store is the replicated ACL state the resolver reads.
type Store interface {
	ACLTokenBySecretHash(h string) (*queue.ACLToken, bool)
	ACLPolicy(name string) (*queue.ACLPolicy, bool)
}

// HashSecret returns the hex SHA-256 of a token secret, as the FSM stores
// it. Secrets are 122 random bits, so a fast hash is enough.
func HashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// NewID returns a random UUID (version 4), used for accessors and secrets.
func NewID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate id: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:], nil
}

// Resolver turns a secret into an Authorizer, caching parsed policies by
// name and modify index. It is safe for concurrent use.
type Resolver struct {
	store Store
	mu    sync.Mutex
	cache map[string]cachedPolicy
}

type cachedPolicy struct {
	index  uint64
	policy *Policy
}

// NewResolver returns a resolver over store.
func NewResolver(store Store) *Resolver {
	return &Resolver{store: store, cache: map[string]cachedPolicy{}}
}

// Resolve returns what the token with this secret may do, and its
// accessor ID. An unknown secret is ErrTokenNotFound. A policy the token
// names that no longer exists (or does not parse) grants nothing.
func (r *Resolver) Resolve(secret string) (*Authorizer, string, error) {
	t, ok := r.store.ACLTokenBySecretHash(HashSecret(secret))
	if !ok {
		return nil, "", ErrTokenNotFound
	}
	if t.Management {
		return AllowAll(), t.AccessorID, nil
	}
	var policies []*Policy
	for _, name := range t.Policies {
		if p := r.policy(name); p != nil {
			policies = append(policies, p)
		}
	}
	return NewAuthorizer(false, policies...), t.AccessorID, nil
}

// policy returns the parsed policy name, from the cache when unchanged.
func (r *Resolver) policy(name string) *Policy {
	qp, ok := r.store.ACLPolicy(name)
	if !ok {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.cache[name]; ok && c.index == qp.ModifyIndex {
		return c.policy
	}
	p, err := Parse(name, qp.Rules)
	if err != nil {
		return nil
	}
	r.cache[name] = cachedPolicy{index: qp.ModifyIndex, policy: p}
	return p
}
