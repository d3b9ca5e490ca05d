package discovery

import "errors"

// Errors returned by this package. Callers compare with errors.Is; the
// returned errors wrap these with details.
var (
	// ErrInvalidConfig is returned by the Validate methods and the
	// constructors when a configuration field has a bad value.
	ErrInvalidConfig = errors.New("invalid discovery config")

	// ErrReservedTag is returned when a user tag uses a name this package
	// sets itself (id, raft, http, role, expect, plugins, bootstrapped).
	ErrReservedTag = errors.New("tag name is reserved")

	// ErrInvalidKey is returned by DecodeKey for a gossip encryption key that
	// is not base64 or has the wrong length.
	ErrInvalidKey = errors.New("invalid gossip encryption key")

	// ErrNotRemoved is returned by Manager.Leave when the node left Serf but
	// was not seen removed from the Raft configuration before the context
	// ended.
	ErrNotRemoved = errors.New("node not removed from the raft configuration")
)
