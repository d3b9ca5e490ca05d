package rpc

import (
	"encoding/binary"
	"fmt"
	"io"
	"sync"

	"github.com/hashicorp/go-msgpack/v2/codec"
)

// frameKind is the first byte of a frame after its length.
type frameKind byte

const (
	// kindOpen is a client's first frame on a stream; its body is an
	// openFrame.
	kindOpen frameKind = 1
	// kindData carries one message of the method's protocol.
	kindData frameKind = 2
	// kindError ends a stream with a wireError; nothing follows it.
	kindError frameKind = 3
)

// String names the kind for errors and logs.
func (k frameKind) String() string {
	switch k {
	case kindOpen:
		return "open"
	case kindData:
		return "data"
	case kindError:
		return "error"
	}
	return fmt.Sprintf("kind(%d)", byte(k))
}

// openFrame is the body of a kindOpen frame.
type openFrame struct {
	// Method selects the handler.
	Method Method
	// Timeout is how much time the caller's ctx had left when it opened the
	// stream, in nanoseconds; 0 means no deadline. The handler's ctx gets
	// this timeout (a duration, not a time, so clock skew does not matter).
	Timeout int64
}

const (
	// frameHeaderBytes is the uint32 length plus the kind byte.
	frameHeaderBytes = 5
	// minFrameBytes is the smallest MaxFrameBytes Validate accepts; it must
	// hold any open or error frame this package sends about itself.
	minFrameBytes = 256
	// keepBufBytes is the largest buffer a stream keeps between frames;
	// larger frames get a buffer of their own that is dropped after use.
	keepBufBytes = 64 << 10
)

// msgpackHandle is the one codec handle for every frame body. WriteExt makes
// []byte travel as msgpack bin (raw bytes) rather than as str. A handle must
// not change after first use; this one never does.
var msgpackHandle = func() *codec.MsgpackHandle {
	h := &codec.MsgpackHandle{}
	h.WriteExt = true
	return h
}()

// Encoders, decoders and buffers are pooled: a call's streams live for one
// round trip, and a codec Encoder or Decoder is costly to build.
var (
	encPool = sync.Pool{New: func() any { return codec.NewEncoderBytes(&[]byte{}, msgpackHandle) }}
	decPool = sync.Pool{New: func() any { return codec.NewDecoderBytes(nil, msgpackHandle) }}
	bufPool = sync.Pool{New: func() any { return new([]byte) }}
)

// getBuf returns an empty pooled buffer.
func getBuf() []byte {
	return (*bufPool.Get().(*[]byte))[:0]
}

// putBuf returns a buffer to the pool unless it grew past keepBufBytes.
func putBuf(b []byte) {
	if cap(b) == 0 || cap(b) > keepBufBytes {
		return
	}
	b = b[:0]
	bufPool.Put(&b)
}

// framer writes and reads frames on one stream. Writes and reads may run
// concurrently with each other, but writes must be serialised by the caller,
// as must reads.
type framer struct {
	r   io.Reader
	max int

	hdr  [4]byte
	rbuf []byte // pooled; the last frame's body lives here until release
}

// newFramer returns a framer reading from r, bounded by max bytes a frame.
func newFramer(r io.Reader, max int) *framer {
	return &framer{r: r, max: max}
}

// appendFrame appends one frame of the given kind carrying v to dst. A v
// with a binary layout (a wireAppender, see wire_codec.go) is encoded with
// it, anything else with msgpack. It fails with ErrFrameTooLarge when the
// frame would exceed the limit.
func (f *framer) appendFrame(dst []byte, kind frameKind, v any) ([]byte, error) {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, byte(kind))
	var err error
	if w, ok := v.(wireAppender); ok {
		dst, err = w.appendWire(dst)
	} else {
		dst, err = appendMsgpack(dst, v)
	}
	if err != nil {
		return dst[:start], fmt.Errorf("encode %s frame: %w", kind, err)
	}
	n := len(dst) - start - 4
	if n > f.max {
		return dst[:start], fmt.Errorf("%w: writing %d bytes, limit %d", ErrFrameTooLarge, n, f.max)
	}
	binary.BigEndian.PutUint32(dst[start:], uint32(n))
	return dst, nil
}

// appendMsgpack appends the msgpack encoding of v to dst.
func appendMsgpack(dst []byte, v any) ([]byte, error) {
	// Encode straight after dst when it has room; the encoder appends, so
	// it may move to a new array, in which case we copy.
	body := dst[len(dst):len(dst):cap(dst)]
	enc := encPool.Get().(*codec.Encoder)
	enc.ResetBytes(&body)
	err := enc.Encode(v)
	encPool.Put(enc)
	if err != nil {
		return dst, err
	}
	if len(body) > 0 && cap(dst) > len(dst) && &dst[:cap(dst)][len(dst)] == &body[0] {
		return dst[:len(dst)+len(body)], nil
	}
	return append(dst, body...), nil
}

// writeFrames writes frames built by build in one Write on w.
// The buffer is pooled: w must not keep it after Write returns (a yamux
// stream copies what it has not sent when a write fails).
func (f *framer) writeFrames(w io.Writer, build func(dst []byte) ([]byte, error)) error {
	buf, err := build(getBuf())
	if err == nil {
		_, err = w.Write(buf)
	}
	putBuf(buf)
	return err
}

// readFrame reads the next frame. The body is valid until release or the
// next readFrame. A
// clean end of stream before a frame is io.EOF; an end inside a frame is
// io.ErrUnexpectedEOF. A length over the limit fails with ErrFrameTooLarge
// before anything is allocated or read for the body.
func (f *framer) readFrame() (frameKind, []byte, error) {
	if _, err := io.ReadFull(f.r, f.hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(f.hdr[:])
	if n == 0 {
		return 0, nil, fmt.Errorf("%w: zero length", ErrBadFrame)
	}
	if uint64(n) > uint64(f.max) {
		return 0, nil, fmt.Errorf("%w: peer announced %d bytes, limit %d", ErrFrameTooLarge, n, f.max)
	}
	var buf []byte
	if n <= keepBufBytes {
		if f.rbuf == nil {
			f.rbuf = getBuf()
		}
		if uint32(cap(f.rbuf)) < n {
			f.rbuf = make([]byte, max(n, 512))
		}
		buf = f.rbuf[:n]
	} else {
		buf = make([]byte, n)
	}
	if _, err := io.ReadFull(f.r, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, err
	}
	return frameKind(buf[0]), buf[1:], nil
}

// release hands the read buffer back to the pool; the last body is invalid
// afterwards.
func (f *framer) release() {
	if f.rbuf != nil {
		putBuf(f.rbuf)
		f.rbuf = nil
	}
}

// decode decodes a frame body into v; a nil v discards it. A v with a
// binary layout (a wireReader, see wire_codec.go) is decoded with it,
// anything else with msgpack. Decoded []byte and string values are copies:
// the body may be reused. Errors wrap ErrBadFrame.
func (f *framer) decode(body []byte, v any) error {
	if v == nil {
		return nil
	}
	if r, ok := v.(wireReader); ok {
		return r.readWire(body)
	}
	return decodeMsgpack(body, v)
}

// decodeMsgpack decodes a msgpack body into v.
func decodeMsgpack(body []byte, v any) error {
	dec := decPool.Get().(*codec.Decoder)
	dec.ResetBytes(body)
	err := dec.Decode(v)
	decPool.Put(dec)
	if err != nil {
		return fmt.Errorf("%w: decode: %w", ErrBadFrame, err)
	}
	return nil
}
