package rpc

import (
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"time"
)

// yamux frame header layout (hashicorp/yamux's spec.md): version(1)
// type(1) flags(2) stream(4) length(4), big-endian.
const (
	yamuxHeaderSize = 12
	yamuxTypeData   = 0
)

// maxPending bounds the bytes a batchingConn holds for its flusher; a
// Write beyond it waits, so a stalled peer stalls yamux's send loop as a
// plain connection would.
const maxPending = 1 << 20

// errConnClosed is returned by a Write after Close.
var errConnClosed = errors.New("connection closed")

// batchingConn is the connection under a yamux session. yamux writes each
// frame with its own Writes (a 12-byte header, then the body), and a unary
// call is several frames (open, data, close, each way): one syscall per
// frame, and under load most of the CPU of the node plane. A batchingConn
// appends what yamux writes to a buffer and one flusher goroutine writes
// the buffer out; while it is in a write, further frames gather and go
// out together in the next one. Nothing waits for a timer: an idle
// connection's frame goes out at once, a busy one's in batches (group
// commit, applied to a socket). The header of a data frame is held back
// until its body arrives (yamux always writes it next), so a message is
// never split over two writes.
//
// A write error is returned by the next Write (yamux then ends the
// session); Close ends the flusher.
type batchingConn struct {
	net.Conn

	mu      sync.Mutex
	cond    sync.Cond // signals pending growth, a finished flush, close
	pending []byte
	spare   []byte
	err     error
	closed  bool
	held    bool // hdr is a data header waiting for its body
	hdr     [yamuxHeaderSize]byte
	done    chan struct{} // closed when the flusher has returned
}

// batch wraps conn for a yamux session and starts its flusher.
func batch(conn net.Conn) net.Conn {
	c := &batchingConn{Conn: conn, done: make(chan struct{})}
	c.cond.L = &c.mu
	go c.flush()
	return c
}

// Write implements io.Writer: p is queued for the flusher.
func (c *batchingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.pending) >= maxPending && c.err == nil && !c.closed {
		c.cond.Wait()
	}
	switch {
	case c.err != nil:
		return 0, c.err
	case c.closed:
		return 0, errConnClosed
	}
	if c.held {
		c.held = false
		c.pending = append(c.pending, c.hdr[:]...)
	} else if len(p) == yamuxHeaderSize && p[1] == yamuxTypeData && binary.BigEndian.Uint32(p[8:]) > 0 {
		copy(c.hdr[:], p)
		c.held = true
		return len(p), nil
	}
	c.pending = append(c.pending, p...)
	c.cond.Broadcast()
	return len(p), nil
}

// flush writes pending bytes until the connection fails or closes.
func (c *batchingConn) flush() {
	defer close(c.done)
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		for len(c.pending) == 0 && !c.closed {
			c.cond.Wait()
		}
		if len(c.pending) == 0 { // closed, all written
			return
		}
		out := c.pending
		c.pending = c.spare[:0]
		c.mu.Unlock()
		_, err := c.Conn.Write(out)
		c.mu.Lock()
		if cap(out) <= maxPending {
			c.spare = out
		}
		if err != nil {
			c.err = err
			c.pending = nil
			c.cond.Broadcast()
			return
		}
		c.cond.Broadcast()
	}
}

// Close lets the flusher write what yamux had queued (for up to a second:
// a peer that reads nothing cannot hold Close), then closes the
// connection.
func (c *batchingConn) Close() error {
	c.mu.Lock()
	c.closed = true
	c.cond.Broadcast()
	c.mu.Unlock()
	_ = c.Conn.SetWriteDeadline(time.Now().Add(time.Second))
	select {
	case <-c.done:
	case <-time.After(time.Second + 100*time.Millisecond):
	}
	err := c.Conn.Close()
	<-c.done
	return err
}
