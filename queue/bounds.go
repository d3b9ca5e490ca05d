package queue

import (
	"errors"
	"fmt"
)

// Bounds on what a client may put in a spec, checked before a submit is
// replicated (CheckBounds). They are deliberately not part of the FSM's
// ValidateSpec: entries already in a raft log must replay as they applied.
const (
	// MaxPluginName is the longest plugin name; names match
	// [a-z0-9][a-z0-9_-]{0,63}.
	MaxPluginName = 64
	// MaxUniqueKey is the longest unique_key, in bytes.
	MaxUniqueKey = 256
	// MaxConstraints is the most constraints a job may carry.
	MaxConstraints = 64
	// MaxConstraintKey is the longest constraint key, in bytes.
	MaxConstraintKey = 128
	// MaxConstraintValue is the longest constraint value, in bytes.
	MaxConstraintValue = 256
	// MaxSpecMetaBytes bounds a spec's variable-size fields other than the
	// payload (which has its own, configurable limit): queue, plugin,
	// unique_key and constraints together.
	MaxSpecMetaBytes = 32 << 10
)

// ErrTooLarge means a field of a request is over its size or count limit;
// it is wrapped in a *BoundError naming the field and the limit.
var ErrTooLarge = errors.New("over the limit")

// BoundError is a spec field that breaks a bound: a malformed value
// (TooLarge false: ErrBadSpec) or one over its size or count limit
// (TooLarge true: ErrTooLarge).
type BoundError struct {
	// Field is the API name of the field ("unique_key", "constraints").
	Field string
	// TooLarge is true when a size or count limit was exceeded.
	TooLarge bool
	// Msg says what is wrong and names the limit.
	Msg string
}

// Error returns "field: message".
func (e *BoundError) Error() string { return e.Field + ": " + e.Msg }

// Unwrap returns ErrTooLarge or ErrBadSpec.
func (e *BoundError) Unwrap() error {
	if e.TooLarge {
		return ErrTooLarge
	}
	return ErrBadSpec
}

// ValidPluginName reports whether name matches [a-z0-9][a-z0-9_-]{0,63}.
func ValidPluginName(name string) bool {
	if len(name) == 0 || len(name) > MaxPluginName {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '_' || c == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

// CheckBounds checks the client-facing bounds of a spec (plugin name,
// queue name, unique_key, constraints, the size of them all). The
// payload's size is the caller's to check against its configured limit.
func CheckBounds(sp *Spec) error {
	if !ValidPluginName(sp.Plugin) {
		shown := sp.Plugin
		if len(shown) > MaxPluginName {
			shown = shown[:MaxPluginName] + "..."
		}
		return &BoundError{Field: "plugin", Msg: fmt.Sprintf("%q must match [a-z0-9][a-z0-9_-]{0,%d} (at most %d characters)", shown, MaxPluginName-1, MaxPluginName)}
	}
	if sp.Queue != "" && !ValidQueueName(sp.Queue) {
		shown := sp.Queue
		if len(shown) > MaxQueueName {
			shown = shown[:MaxQueueName] + "..."
		}
		return &BoundError{Field: "queue", Msg: fmt.Sprintf("%q must be 1-%d characters of A-Z a-z 0-9 _ . -", shown, MaxQueueName)}
	}
	if n := len(sp.UniqueKey); n > MaxUniqueKey {
		return &BoundError{Field: "unique_key", TooLarge: true, Msg: fmt.Sprintf("%d bytes exceeds the %d-byte limit", n, MaxUniqueKey)}
	}
	if n := len(sp.Constraints); n > MaxConstraints {
		return &BoundError{Field: "constraints", TooLarge: true, Msg: fmt.Sprintf("%d constraints exceed the limit of %d", n, MaxConstraints)}
	}
	size := len(sp.Queue) + len(sp.Plugin) + len(sp.UniqueKey)
	for k, v := range sp.Constraints {
		if len(k) > MaxConstraintKey {
			return &BoundError{Field: "constraints", TooLarge: true, Msg: fmt.Sprintf("a key of %d bytes exceeds the %d-byte limit", len(k), MaxConstraintKey)}
		}
		if len(v) > MaxConstraintValue {
			return &BoundError{Field: "constraints", TooLarge: true, Msg: fmt.Sprintf("the value of %q (%d bytes) exceeds the %d-byte limit", k, len(v), MaxConstraintValue)}
		}
		size += len(k) + len(v)
	}
	if size > MaxSpecMetaBytes {
		return &BoundError{Field: "job", TooLarge: true, Msg: fmt.Sprintf("queue, plugin, unique_key and constraints take %d bytes, over the %d-byte limit", size, MaxSpecMetaBytes)}
	}
	return nil
}
