package rpc

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	cfg := DefaultConfig()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("DefaultConfig invalid: %v", err)
	}
	cases := []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"handshake", func(c *Config) { c.HandshakeTimeout = 0 }, "HandshakeTimeout is 0s"},
		{"dial", func(c *Config) { c.DialTimeout = -time.Second }, "DialTimeout is -1s"},
		{"keepalive", func(c *Config) { c.KeepAliveInterval = 0 }, "KeepAliveInterval"},
		{"write", func(c *Config) { c.ConnectionWriteTimeout = 0 }, "ConnectionWriteTimeout"},
		{"close", func(c *Config) { c.StreamCloseTimeout = 0 }, "StreamCloseTimeout"},
		{"frame small", func(c *Config) { c.MaxFrameBytes = 10 }, "MaxFrameBytes is 10"},
		{"frame big", func(c *Config) { c.MaxFrameBytes = 2 << 30 }, "MaxFrameBytes is 2147483648"},
		{"backlog", func(c *Config) { c.AcceptBacklog = 0 }, "AcceptBacklog is 0"},
		{"advertise unspecified", func(c *Config) { c.AdvertiseAddr = "0.0.0.0:4781" }, `AdvertiseAddr "0.0.0.0:4781"`},
		{"advertise no port", func(c *Config) { c.AdvertiseAddr = "10.0.0.1" }, "AdvertiseAddr"},
		{"advertise port 0", func(c *Config) { c.AdvertiseAddr = "10.0.0.1:0" }, "port"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.change(&c)
			err := c.Validate()
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("got %v, want ErrInvalidConfig", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not name %q", err, tc.want)
			}
		})
	}
	c := DefaultConfig()
	c.AdvertiseAddr = "node-1.corral.internal:4781"
	if err := c.Validate(); err != nil {
		t.Fatalf("host name rejected: %v", err)
	}
}

func TestNames(t *testing.T) {
	for m, want := range map[Method]string{MethodForward: "forward", MethodDispatch: "dispatch", Method(77): "method(77)"} {
		if got := m.String(); got != want {
			t.Errorf("Method(%d).String() = %q, want %q", m, got, want)
		}
	}
	for p, want := range map[Proto]string{ProtoRaft: "raft", ProtoRPC: "rpc", Proto('G'): "0x47", Proto(0): "0x00"} {
		if got := p.String(); got != want {
			t.Errorf("Proto(%d).String() = %q, want %q", p, got, want)
		}
	}
}

// TestFrameRoundtrip checks the encoding of every field type the daemon
// sends, that []byte is raw binary on the wire (not base64), and that a
// decoded []byte does not alias the reused read buffer.
func TestFrameRoundtrip(t *testing.T) {
	payload := make([]byte, 256)
	for i := range payload {
		payload[i] = byte(i)
	}
	big := make([]byte, 100<<10)
	rand.Read(big)
	msgs := []echoReq{
		{ID: 1, Name: "a", Payload: payload, At: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), Tags: map[string]string{"zone": "a"}},
		{ID: 2, Payload: big},
		{ID: 3, Payload: []byte{}},
		{ID: 4},
	}
	var wire bytes.Buffer
	f := newFramer(&wire, 1<<20)
	for i := range msgs {
		if err := f.writeFrames(&wire, func(dst []byte) ([]byte, error) {
			return f.appendFrame(dst, kindData, &msgs[i])
		}); err != nil {
			t.Fatal(err)
		}
	}
	// The 256 raw bytes appear verbatim in the first frame.
	if !bytes.Contains(wire.Bytes(), payload) {
		t.Fatal("[]byte payload is not raw binary on the wire")
	}
	var got []echoReq
	for range msgs {
		kind, body, err := f.readFrame()
		if err != nil {
			t.Fatal(err)
		}
		if kind != kindData {
			t.Fatalf("kind %s", kind)
		}
		var m echoReq
		if err := f.decode(body, &m); err != nil {
			t.Fatal(err)
		}
		got = append(got, m)
	}
	if _, _, err := f.readFrame(); err != io.EOF {
		t.Fatalf("after last frame: %v, want io.EOF", err)
	}
	for i := range msgs {
		w, g := msgs[i], got[i]
		if g.ID != w.ID || g.Name != w.Name || !bytes.Equal(g.Payload, w.Payload) || !g.At.Equal(w.At) || len(g.Tags) != len(w.Tags) {
			t.Fatalf("message %d: got %+v, want %+v", i, g.ID, w.ID)
		}
	}
	if !bytes.Equal(got[0].Payload, payload) {
		t.Fatal("first payload changed by later reads: it aliases the read buffer")
	}
}

// blockingReader returns its data and then blocks reads forever (until
// closed), like a peer that announced a frame and then stalls.
type blockingReader struct {
	data []byte
	stop chan struct{}
}

func (r *blockingReader) Read(p []byte) (int, error) {
	if len(r.data) > 0 {
		n := copy(p, r.data)
		r.data = r.data[n:]
		return n, nil
	}
	<-r.stop
	return 0, io.EOF
}

// TestFrameOversizeNoAlloc: a header announcing 1 GiB fails at once with
// ErrFrameTooLarge, without reading or allocating the body.
func TestFrameOversizeNoAlloc(t *testing.T) {
	hdr := make([]byte, 4)
	binary.BigEndian.PutUint32(hdr, 1<<30)
	stop := make(chan struct{})
	defer close(stop)

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	allocs := testing.AllocsPerRun(10, func() {
		f := &framer{r: &blockingReader{data: hdr, stop: stop}, max: 16 << 20}
		_, _, err := f.readFrame()
		if !errors.Is(err, ErrFrameTooLarge) {
			t.Fatalf("got %v, want ErrFrameTooLarge", err)
		}
	})
	runtime.ReadMemStats(&after)
	if allocs > 10 {
		t.Fatalf("%v allocations refusing an oversize frame", allocs)
	}
	if d := after.TotalAlloc - before.TotalAlloc; d > 1<<20 {
		t.Fatalf("allocated %d bytes refusing an oversize frame", d)
	}

	// Zero length is malformed, not a frame.
	f := newFramer(bytes.NewReader([]byte{0, 0, 0, 0}), 1024)
	if _, _, err := f.readFrame(); !errors.Is(err, ErrBadFrame) {
		t.Fatalf("zero length: %v, want ErrBadFrame", err)
	}
	// A frame cut short is io.ErrUnexpectedEOF.
	f = newFramer(bytes.NewReader([]byte{0, 0, 0, 9, 2, 1}), 1024)
	if _, _, err := f.readFrame(); err != io.ErrUnexpectedEOF {
		t.Fatalf("short frame: %v, want io.ErrUnexpectedEOF", err)
	}
	// Writing over the limit fails before anything is written.
	var w bytes.Buffer
	f = newFramer(&w, 1024)
	err := f.writeFrames(&w, func(dst []byte) ([]byte, error) {
		return f.appendFrame(dst, kindData, &echoReq{Payload: make([]byte, 2048)})
	})
	if !errors.Is(err, ErrFrameTooLarge) || w.Len() != 0 {
		t.Fatalf("oversize write: err %v, %d bytes written", err, w.Len())
	}
}
