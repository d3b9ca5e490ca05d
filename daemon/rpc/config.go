package rpc

import (
	"crypto/tls"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/yamux"
)

// Config configures a [Mux], a [Server] and a [Pool]. The three usually share
// one Config; each reads only the fields it needs. Start from
// [DefaultConfig], change fields, and pass it to the constructor, which calls
// [Config.Validate]. A Config must not be changed after it was passed to a
// constructor.
type Config struct {
	// AdvertiseAddr is the host:port other nodes use to reach this node's
	// port. The Mux's raft layer reports it as its Addr, which raft uses as
	// this server's address. Empty means the listener's address, which must
	// then not be an unspecified IP (0.0.0.0 or ::).
	AdvertiseAddr string

	// TLS, when non-nil, makes the Mux run a TLS server handshake on every
	// accepted connection before reading the protocol byte. The caller sets
	// Certificates, ClientCAs and ClientAuth (tls.RequireAndVerifyClientCert
	// for mutual TLS). Nil means plain TCP.
	TLS *tls.Config

	// DialTLS, when non-nil, makes the raft layer's Dial and the Pool run a
	// TLS client handshake on every dialed connection before writing the
	// protocol byte. The caller sets RootCAs, Certificates (for mutual TLS)
	// and normally ServerName (e.g. "server.<cluster>.corral"); when
	// ServerName is empty the host part of the dialed address is used. Nil
	// means plain TCP.
	DialTLS *tls.Config

	// HandshakeTimeout bounds, on an accepted connection, the TLS handshake
	// plus reading the protocol byte, and on a new stream the read of its
	// open frame. Default 5s.
	HandshakeTimeout time.Duration

	// DialTimeout bounds dialing a peer, including the TLS handshake and
	// writing the protocol byte (Pool). The raft layer uses the timeout raft
	// passes to Dial. Default 5s.
	DialTimeout time.Duration

	// MaxFrameBytes is the largest frame (kind byte plus msgpack body) a
	// stream reads or writes. A peer announcing a larger frame fails the
	// stream with ErrFrameTooLarge before anything is allocated for it.
	// Default 16 MiB; at most 1 GiB.
	MaxFrameBytes int

	// KeepAliveInterval is how often an idle RPC session pings its peer. A
	// ping not answered within ConnectionWriteTimeout closes the session, so
	// a partitioned peer is detected within KeepAliveInterval +
	// ConnectionWriteTimeout. Default 2s.
	KeepAliveInterval time.Duration

	// ConnectionWriteTimeout is yamux's safety valve: a write to the
	// underlying connection (or a keepalive answer) that takes longer closes
	// the session. Default 3s.
	ConnectionWriteTimeout time.Duration

	// StreamCloseTimeout bounds how long a stream closed on this side waits
	// for the peer to close its side before it is reset. Default 30s.
	StreamCloseTimeout time.Duration

	// AcceptBacklog is how many opened but not yet accepted streams a
	// session queues before the opener blocks. Default 256.
	AcceptBacklog int

	// Logger is the logger the package uses, named "rpc". Nil means
	// hclog.Default().
	Logger hclog.Logger
}

// DefaultConfig returns a Config with every default filled in and no TLS.
func DefaultConfig() Config {
	return Config{
		HandshakeTimeout:       5 * time.Second,
		DialTimeout:            5 * time.Second,
		MaxFrameBytes:          16 << 20,
		KeepAliveInterval:      2 * time.Second,
		ConnectionWriteTimeout: 3 * time.Second,
		StreamCloseTimeout:     30 * time.Second,
		AcceptBacklog:          256,
	}
}

// maxFrameLimit is the largest MaxFrameBytes Validate accepts.
const maxFrameLimit = 1 << 30

// Validate reports the first field that is out of range, naming the field and
// its value. The error wraps ErrInvalidConfig.
func (c *Config) Validate() error {
	if c.AdvertiseAddr != "" {
		if _, err := advertisable(c.AdvertiseAddr); err != nil {
			return fmt.Errorf("%w: AdvertiseAddr %q: %w", ErrInvalidConfig, c.AdvertiseAddr, err)
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"HandshakeTimeout", c.HandshakeTimeout},
		{"DialTimeout", c.DialTimeout},
		{"KeepAliveInterval", c.KeepAliveInterval},
		{"ConnectionWriteTimeout", c.ConnectionWriteTimeout},
		{"StreamCloseTimeout", c.StreamCloseTimeout},
	} {
		if d.v <= 0 {
			return fmt.Errorf("%w: %s is %v, must be positive", ErrInvalidConfig, d.name, d.v)
		}
	}
	if c.MaxFrameBytes < minFrameBytes || c.MaxFrameBytes > maxFrameLimit {
		return fmt.Errorf("%w: MaxFrameBytes is %d, must be between %d and %d",
			ErrInvalidConfig, c.MaxFrameBytes, minFrameBytes, maxFrameLimit)
	}
	if c.AcceptBacklog <= 0 {
		return fmt.Errorf("%w: AcceptBacklog is %d, must be positive", ErrInvalidConfig, c.AcceptBacklog)
	}
	return nil
}

// logger returns the configured logger named "rpc".
func (c *Config) logger() hclog.Logger {
	l := c.Logger
	if l == nil {
		l = hclog.Default()
	}
	return l.Named("rpc")
}

// yamuxConfig is the session configuration derived from c. Keepalives are
// off for in-process sessions, which cannot be partitioned.
func (c *Config) yamuxConfig(logger hclog.Logger, keepAlive bool) *yamux.Config {
	return &yamux.Config{
		AcceptBacklog:          c.AcceptBacklog,
		EnableKeepAlive:        keepAlive,
		KeepAliveInterval:      c.KeepAliveInterval,
		ConnectionWriteTimeout: c.ConnectionWriteTimeout,
		MaxStreamWindowSize:    256 * 1024,
		// No per-stream open timer: keepalives already detect a dead peer,
		// and a timer and goroutine per call are measurable.
		StreamOpenTimeout:  0,
		StreamCloseTimeout: c.StreamCloseTimeout,
		Logger: logger.Named("yamux").StandardLogger(&hclog.StandardLoggerOptions{
			InferLevels: true,
		}),
	}
}

// advertisable checks that hostport is an address peers can dial: a
// non-empty host that is not an unspecified IP (0.0.0.0, ::) and a non-zero
// numeric port. Host names are kept as written, not resolved.
func advertisable(hostport string) (net.Addr, error) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return nil, err
	}
	if host == "" {
		return nil, fmt.Errorf("%w: empty host", ErrNotAdvertisable)
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return nil, fmt.Errorf("%w: unspecified IP %s", ErrNotAdvertisable, host)
	}
	if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
		return nil, fmt.Errorf("%w: port %q", ErrNotAdvertisable, port)
	}
	return advertiseAddr(hostport), nil
}

// advertiseAddr is a net.Addr that keeps the advertised host:port verbatim.
type advertiseAddr string

// Network returns "tcp".
func (a advertiseAddr) Network() string { return "tcp" }

// String returns the host:port.
func (a advertiseAddr) String() string { return string(a) }
