package rpc

import (
	"encoding/binary"
	"net"
)

// yamux frame header layout (hashicorp/yamux's spec.md): version(1)
// type(1) flags(2) stream(4) length(4), big-endian.
const (
	yamuxHeaderSize = 12
	yamuxTypeData   = 0
)

// coalescingConn is the connection under a yamux session. yamux writes
// each frame as two Writes, the 12-byte header and then the body, which
// costs two syscalls (and, under TLS, two records) per message. This
// wrapper holds back the header of a data frame that announces a body
// and sends it with the body in one Write. Headers without a body (window
// updates, pings, go-aways, empty data frames) go out at once.
//
// yamux writes from one goroutine (its send loop) and always follows a
// data header that announces a length with that body, so a held header
// never waits for anything but the next Write.
type coalescingConn struct {
	net.Conn
	held bool
	hdr  [yamuxHeaderSize]byte
	buf  []byte
}

// coalesce wraps conn for a yamux session.
func coalesce(conn net.Conn) net.Conn {
	return &coalescingConn{Conn: conn}
}

// Write implements io.Writer with the coalescing described on the type.
func (c *coalescingConn) Write(p []byte) (int, error) {
	if c.held {
		c.held = false
		c.buf = append(append(c.buf[:0], c.hdr[:]...), p...)
		n, err := c.Conn.Write(c.buf)
		if cap(c.buf) > 64<<10 {
			c.buf = nil // don't pin a large body's buffer
		}
		return max(n-yamuxHeaderSize, 0), err
	}
	if len(p) == yamuxHeaderSize && p[1] == yamuxTypeData && binary.BigEndian.Uint32(p[8:]) > 0 {
		copy(c.hdr[:], p)
		c.held = true
		return len(p), nil
	}
	return c.Conn.Write(p)
}
