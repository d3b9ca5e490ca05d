package rpc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/yamux"
)

// writeLog is a net.Conn that records each Write it gets; while gate is
// set, a Write waits until the gate is closed.
type writeLog struct {
	net.Conn
	mu      sync.Mutex
	writes  [][]byte
	gate    chan struct{}
	entered chan struct{} // gets a value when a Write waits at the gate
}

func (w *writeLog) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.writes = append(w.writes, append([]byte(nil), p...))
	gate := w.gate
	w.mu.Unlock()
	if gate != nil {
		w.entered <- struct{}{}
		<-gate
	}
	return w.Conn.Write(p)
}

func (w *writeLog) log() [][]byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([][]byte(nil), w.writes...)
}

func yamuxHeader(typ byte, length uint32) []byte {
	h := make([]byte, yamuxHeaderSize)
	h[1] = typ
	binary.BigEndian.PutUint32(h[4:], 3) // stream 3
	binary.BigEndian.PutUint32(h[8:], length)
	return h
}

// drain reads everything from c into a buffer until c closes.
func drain(c net.Conn) (*bytes.Buffer, chan struct{}) {
	var buf bytes.Buffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(&buf, c)
	}()
	return &buf, done
}

// TestBatchingConnGathersWritesWhileOneIsInFlight: frames written while
// the connection is busy with a write go out together in the next one,
// in order; an idle connection's frame goes out at once.
func TestBatchingConnGathersWritesWhileOneIsInFlight(t *testing.T) {
	a, b := net.Pipe()
	wl := &writeLog{Conn: a, gate: make(chan struct{}), entered: make(chan struct{}, 1)}
	c := batch(wl)
	got, done := drain(b)

	first := yamuxHeader(1, 1<<16) // a window update: no body
	if _, err := c.Write(first); err != nil {
		t.Fatal(err)
	}
	select {
	case <-wl.entered: // the flusher is writing it, held at the gate
	case <-time.After(5 * time.Second):
		t.Fatal("an idle connection's frame was not written at once")
	}
	var want bytes.Buffer
	want.Write(first)
	for i := range 10 {
		body := bytes.Repeat([]byte{byte('a' + i)}, 5)
		for _, p := range [][]byte{yamuxHeader(0, 5), body} {
			want.Write(p)
			if _, err := c.Write(p); err != nil {
				t.Fatal(err)
			}
		}
	}
	wl.mu.Lock()
	gate := wl.gate
	wl.gate = nil // later writes pass
	wl.mu.Unlock()
	close(gate) // release the held one
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	<-done
	if !bytes.Equal(got.Bytes(), want.Bytes()) {
		t.Fatalf("the peer read %x, want %x", got.Bytes(), want.Bytes())
	}
	if n := len(wl.log()); n != 2 {
		t.Fatalf("21 frames went out in %d writes, want 2 (the first, then the 20 gathered while it was in flight)", n)
	}
}

// TestBatchingConnReportsWriteErrors: once the connection fails, the next
// Write says so (yamux then ends the session).
func TestBatchingConnReportsWriteErrors(t *testing.T) {
	a, b := net.Pipe()
	c := batch(a)
	defer c.Close()
	b.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := c.Write([]byte("x"))
		if err != nil {
			if !errors.Is(err, io.ErrClosedPipe) {
				t.Fatalf("Write after the peer closed = %v, want the pipe's error", err)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("Write kept succeeding after the connection failed")
		}
		time.Sleep(time.Millisecond) // poll: the flusher reports the error asynchronously
	}
}

// TestBatchingConnCloseIsBounded: Close returns even when the peer reads
// nothing and a write is stuck.
func TestBatchingConnCloseIsBounded(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	c := batch(a)
	if _, err := c.Write([]byte("nobody reads this")); err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	go func() { closed <- c.Close() }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close hung on a peer that reads nothing")
	}
	if _, err := c.Write([]byte("x")); err == nil {
		t.Fatal("Write after Close succeeded")
	}
}

// TestYamuxFrameIsOneWrite: through a real yamux session, a message on a
// stream reaches the connection in one Write together with its header,
// and the peer reads it intact.
func TestYamuxFrameIsOneWrite(t *testing.T) {
	a, b := net.Pipe()
	wl := &writeLog{Conn: a}
	cfg := yamux.DefaultConfig()
	cfg.LogOutput = io.Discard
	cfg.EnableKeepAlive = false
	client, err := yamux.Client(batch(wl), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := yamux.Server(b, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()

	msg := bytes.Repeat([]byte("corral"), 100)
	accepted := make(chan []byte, 1)
	go func() {
		s, err := server.Accept()
		if err != nil {
			accepted <- nil
			return
		}
		buf := make([]byte, len(msg))
		if _, err := io.ReadFull(s, buf); err != nil {
			accepted <- nil
			return
		}
		accepted <- buf
	}()
	s, err := client.Open()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write(msg); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-accepted:
		if !bytes.Equal(got, msg) {
			t.Fatalf("the peer read %d bytes that differ from the %d sent", len(got), len(msg))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the message did not arrive")
	}
	var framed int
	for _, w := range wl.log() {
		i := bytes.Index(w, msg)
		if i < 0 {
			continue
		}
		framed++
		if i < yamuxHeaderSize || w[i-yamuxHeaderSize+1] != yamuxTypeData ||
			binary.BigEndian.Uint32(w[i-4:i]) != uint32(len(msg)) {
			t.Fatalf("the message's body went out without its data header before it in the same write")
		}
	}
	if framed != 1 {
		t.Fatalf("the message's body was in %d writes, want 1 (with its header)", framed)
	}
}
