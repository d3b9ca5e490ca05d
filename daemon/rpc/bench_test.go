package rpc

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/corral-dev/corral/queue"
)

// benchReq is a small request, about the size of a heartbeat or a credit
// announcement.
var benchReq = echoReq{ID: 12345, Name: "default", Payload: []byte(`{"echo":"hi"}`)}

// BenchmarkCall is one small request/response over loopback TCP: one
// stream on the pooled session per call.
func BenchmarkCall(b *testing.B) {
	cfg := testConfig(b, nil)
	n := mustNode(b, cfg, "127.0.0.1:0")
	p := mustPool(b, cfg)
	ctx := context.Background()
	var resp echoResp
	if err := p.Call(ctx, n.addr, methodEcho, &benchReq, &resp); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := p.Call(ctx, n.addr, methodEcho, &benchReq, &resp); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCallParallel is BenchmarkCall from GOMAXPROCS goroutines at once,
// all on one session.
func BenchmarkCallParallel(b *testing.B) {
	cfg := testConfig(b, nil)
	n := mustNode(b, cfg, "127.0.0.1:0")
	p := mustPool(b, cfg)
	ctx := context.Background()
	if err := p.Call(ctx, n.addr, methodEcho, &benchReq, nil); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var resp echoResp
		for pb.Next() {
			if err := p.Call(ctx, n.addr, methodEcho, &benchReq, &resp); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkLocalCall is the in-process path (net.Pipe, same framing).
func BenchmarkLocalCall(b *testing.B) {
	srv := mustServer(b, testConfig(b, nil))
	ctx := context.Background()
	var resp echoResp
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := srv.LocalCall(ctx, methodEcho, &benchReq, &resp); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStreamFrames sends small frames one way on one long-lived stream
// over loopback TCP (the dispatch stream's steady state).
func BenchmarkStreamFrames(b *testing.B) {
	cfg := testConfig(b, nil)
	n := mustNode(b, cfg, "127.0.0.1:0")
	p := mustPool(b, cfg)
	s, err := p.Open(context.Background(), n.addr, methodSink)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.Send(&benchReq); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.CloseSend(); err != nil {
		b.Fatal(err)
	}
	var total echoResp
	if err := s.Recv(&total); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	if total.Req.ID != uint64(b.N) {
		b.Fatalf("server counted %d frames, want %d", total.Req.ID, b.N)
	}
}

// benchDown is a Down with 64 leases of 200-byte payloads.
func benchDown() *Down {
	d := &Down{Leases: make([]Lease, 64)}
	for i := range d.Leases {
		payload := make([]byte, 200)
		for j := range payload {
			payload[j] = byte(i + j)
		}
		d.Leases[i] = Lease{ID: fmt.Sprintf("01J0ABCDEFGHJKMNPQRSTV%04d", i), Token: uint64(i+1) << 20, Attempt: 1,
			Queue: "default", Plugin: "exec", Payload: payload, Timeout: 30 * time.Minute}
	}
	return d
}

// benchUp is an Up with 64 reports (and a heartbeat, as a busy worker
// sends them).
func benchUp() *Up {
	u := &Up{Seq: 99, Reports: make([]queue.Report, 64), Heartbeat: make([]queue.LeaseRef, 0, 64)}
	for i := range u.Reports {
		id := fmt.Sprintf("01J0ABCDEFGHJKMNPQRSTV%04d", i)
		u.Reports[i] = queue.Report{ID: id, Token: uint64(i+1) << 20, Node: "node-1", Outcome: queue.OutcomeSucceeded,
			Result: []byte(`{"ok":true,"rows":1234}`)}
		u.Heartbeat = append(u.Heartbeat, queue.LeaseRef{ID: id, Token: uint64(i+1) << 20})
	}
	return u
}

// BenchmarkCodecDown is one encode and decode of benchDown: the binary
// layout through appendFrame and decode, against the msgpack codec called
// directly (what appendFrame and decode did for it before).
func BenchmarkCodecDown(b *testing.B) {
	benchCodec(b, benchDown(), func() any { return new(Down) })
}

// BenchmarkCodecUp is BenchmarkCodecDown for benchUp.
func BenchmarkCodecUp(b *testing.B) {
	benchCodec(b, benchUp(), func() any { return new(Up) })
}

func benchCodec(b *testing.B, in any, zero func() any) {
	b.Run("msgpack", func(b *testing.B) {
		buf, err := appendMsgpack(nil, in)
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(buf)))
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if buf, err = appendMsgpack(buf[:0], in); err != nil {
				b.Fatal(err)
			}
			if err := decodeMsgpack(buf, zero()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("binary", func(b *testing.B) {
		f := newFramer(nil, 64<<20)
		buf, err := f.appendFrame(nil, kindData, in)
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(buf) - frameHeaderBytes))
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if buf, err = f.appendFrame(buf[:0], kindData, in); err != nil {
				b.Fatal(err)
			}
			if err := f.decode(buf[frameHeaderBytes:], zero()); err != nil {
				b.Fatal(err)
			}
		}
	})
}
