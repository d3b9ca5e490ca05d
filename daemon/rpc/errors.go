package rpc

import (
	"errors"
	"fmt"
	"sync"
)

var (
	// ErrInvalidConfig wraps every error from Config.Validate.
	ErrInvalidConfig = errors.New("invalid rpc config")

	// ErrNotAdvertisable means an address cannot be given to peers (empty
	// host, unspecified IP or port 0).
	ErrNotAdvertisable = errors.New("address is not advertisable")

	// ErrClosed means the Mux, Server, Pool or Stream was closed by this
	// node.
	ErrClosed = errors.New("closed")

	// ErrUnreachable means no byte of the request left this node: the dial
	// or TLS handshake failed, the session was closed or dropped before the
	// stream opened, or ctx ended first. Retrying cannot duplicate a write.
	ErrUnreachable = errors.New("peer unreachable")

	// ErrConnLost means the session or stream failed after the request
	// started to leave this node (peer died, partition detected by keepalive,
	// Pool.Drop, stream reset, peer closed without answering). The request
	// may have been applied.
	ErrConnLost = errors.New("connection lost")

	// ErrFrameTooLarge means a frame is longer than Config.MaxFrameBytes.
	// Locally it fails the stream before the body is read; from the peer it
	// arrives as a RemoteError with code "frame_too_large".
	ErrFrameTooLarge = errors.New("frame too large")

	// ErrBadFrame means a frame could not be parsed (zero length, unknown
	// kind, undecodable body, or the wrong frame at the wrong time). From the
	// peer it arrives with code "bad_frame".
	ErrBadFrame = errors.New("malformed frame")

	// ErrUnknownMethod means the server has no handler for the method. It
	// arrives as a RemoteError with code "unknown_method".
	ErrUnknownMethod = errors.New("unknown method")
)

// Codes of the errors this package registers itself.
const (
	codeUnknownMethod = "unknown_method"
	codeFrameTooLarge = "frame_too_large"
	codeBadFrame      = "bad_frame"
)

// RemoteError is an error a peer's handler (or the peer's server) returned,
// as it arrived in an error frame. Unwrap returns the sentinel registered for
// Code with RegisterError, so errors.Is(err, sentinel) works across the wire;
// for unknown codes only Code and Message are known.
type RemoteError struct {
	// Code is the registered code of the error, or "" when the handler's
	// error matched no registered sentinel.
	Code string
	// Message is the handler error's Error() text.
	Message string
}

// Error returns the remote message.
func (e *RemoteError) Error() string {
	if e.Message == "" {
		return "remote error " + e.Code
	}
	return e.Message
}

// Unwrap returns the sentinel registered for e.Code, or nil.
func (e *RemoteError) Unwrap() error {
	return registry.sentinel(e.Code)
}

// wireError is the body of an error frame.
type wireError struct {
	Code    string
	Message string
}

// errorRegistry maps codes to sentinels, in registration order.
type errorRegistry struct {
	mu      sync.RWMutex
	codes   []string
	byCode  map[string]error
	ordered []error
}

var registry = &errorRegistry{byCode: map[string]error{}}

func init() {
	RegisterError(codeUnknownMethod, ErrUnknownMethod)
	RegisterError(codeFrameTooLarge, ErrFrameTooLarge)
	RegisterError(codeBadFrame, ErrBadFrame)
}

// RegisterError makes sentinel travel across the wire as code: a handler
// error for which errors.Is(err, sentinel) holds is sent with this code, and
// the caller's error matches sentinel with errors.Is. Both nodes must register
// the same code for the same meaning, typically in an init function of the
// package that owns the sentinel. When a handler error matches several
// sentinels, the one registered first wins. RegisterError panics on an empty
// code, a nil sentinel, or a code or sentinel registered twice.
func RegisterError(code string, sentinel error) {
	if code == "" || sentinel == nil {
		panic("rpc: RegisterError needs a code and a sentinel")
	}
	registry.mu.Lock()
	defer registry.mu.Unlock()
	if _, ok := registry.byCode[code]; ok {
		panic(fmt.Sprintf("rpc: error code %q registered twice", code))
	}
	for _, s := range registry.ordered {
		if s == sentinel {
			panic(fmt.Sprintf("rpc: sentinel %q registered twice", sentinel))
		}
	}
	registry.byCode[code] = sentinel
	registry.codes = append(registry.codes, code)
	registry.ordered = append(registry.ordered, sentinel)
}

// sentinel returns the sentinel registered for code, or nil.
func (r *errorRegistry) sentinel(code string) error {
	if code == "" {
		return nil
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.byCode[code]
}

// code returns the code of the first registered sentinel err matches, or "".
func (r *errorRegistry) code(err error) string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for i, s := range r.ordered {
		if errors.Is(err, s) {
			return r.codes[i]
		}
	}
	return ""
}

// toWire turns a handler error into an error frame body.
func toWire(err error) wireError {
	var re *RemoteError
	if errors.As(err, &re) {
		// A handler that forwards a peer's error keeps its code.
		return wireError{Code: re.Code, Message: err.Error()}
	}
	return wireError{Code: registry.code(err), Message: err.Error()}
}

// MayHaveReached reports whether a request that failed with err may have
// reached the peer's handler: false only for a nil error and for
// ErrUnreachable. A RemoteError means the handler (or the peer's server)
// answered; MayHaveReached is true for it, and the error's own meaning says
// whether anything was applied.
func MayHaveReached(err error) bool {
	return err != nil && !errors.Is(err, ErrUnreachable)
}

// unreachable wraps cause so that it matches ErrUnreachable and cause.
func unreachable(cause error) error {
	if errors.Is(cause, ErrUnreachable) {
		return cause
	}
	return fmt.Errorf("%w: %w", ErrUnreachable, cause)
}
