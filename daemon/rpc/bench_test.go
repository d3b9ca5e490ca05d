package rpc

import (
	"context"
	"testing"
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
