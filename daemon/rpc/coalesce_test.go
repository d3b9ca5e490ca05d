package rpc

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/yamux"
)

// writeLog is a net.Conn that records each Write it gets.
type writeLog struct {
	net.Conn
	mu     sync.Mutex
	writes [][]byte
}

func (w *writeLog) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.writes = append(w.writes, append([]byte(nil), p...))
	w.mu.Unlock()
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

// TestCoalescingConnRules: a data header that announces a body is sent with
// that body in one Write; a header without a body (window update, ping, an
// empty data frame) is sent at once.
func TestCoalescingConnRules(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	got := make(chan []byte, 16)
	go func() {
		buf := make([]byte, 1024)
		for {
			n, err := b.Read(buf)
			if err != nil {
				close(got)
				return
			}
			got <- append([]byte(nil), buf[:n]...)
		}
	}()
	c := coalesce(a)
	recv := func(what string, want []byte) {
		t.Helper()
		select {
		case p := <-got:
			if !bytes.Equal(p, want) {
				t.Fatalf("%s: the peer read %x, want %x in one piece", what, p, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: nothing reached the peer", what)
		}
	}

	for _, hdr := range [][]byte{
		yamuxHeader(1, 1<<16), // window update: length is a delta, no body
		yamuxHeader(2, 7),     // ping: length is the ping ID
		yamuxHeader(0, 0),     // data frame without a body (SYN/FIN)
	} {
		if n, err := c.Write(hdr); n != len(hdr) || err != nil {
			t.Fatalf("Write(header type %d) = %d, %v", hdr[1], n, err)
		}
		recv("a header without a body", hdr)
	}

	hdr, body := yamuxHeader(0, 5), []byte("hello")
	done := make(chan struct{})
	go func() {
		defer close(done)
		if n, err := c.Write(hdr); n != len(hdr) || err != nil {
			t.Errorf("Write(data header) = %d, %v", n, err)
		}
		if n, err := c.Write(body); n != len(body) || err != nil {
			t.Errorf("Write(body) = %d, %v", n, err)
		}
	}()
	recv("a data frame", append(append([]byte(nil), hdr...), body...))
	<-done
}

// TestYamuxFrameIsOneWrite: through a real yamux session, a message on a
// stream reaches the connection as one Write (header and body together),
// and the peer reads it intact.
func TestYamuxFrameIsOneWrite(t *testing.T) {
	a, b := net.Pipe()
	wl := &writeLog{Conn: a}
	cfg := yamux.DefaultConfig()
	cfg.LogOutput = io.Discard
	cfg.EnableKeepAlive = false
	client, err := yamux.Client(coalesce(wl), cfg)
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
		if bytes.Contains(w, msg) {
			framed++
			if len(w) != yamuxHeaderSize+len(msg) {
				t.Fatalf("the message went out in a %d-byte write, want header+body = %d", len(w), yamuxHeaderSize+len(msg))
			}
		}
	}
	if framed != 1 {
		t.Fatalf("the message's body was in %d writes, want 1 (with its header)", framed)
	}
}
