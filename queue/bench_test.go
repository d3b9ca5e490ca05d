package queue

import (
	"bytes"
	"fmt"
	"runtime"
	"testing"
	"time"
)

// benchStore feeds a store encoded entries, like raft.
type benchStore struct {
	b     *testing.B
	s     *Store
	index uint64
	now   time.Time
	id    int
}

func newBenchStore(b *testing.B) *benchStore {
	return &benchStore{b: b, s: New(), now: t0}
}

func (bs *benchStore) apply(cmds ...Command) []Result {
	bs.index++
	bs.now = bs.now.Add(time.Millisecond)
	data, err := Encode(Entry{Now: bs.now, Cmds: cmds})
	if err != nil {
		bs.b.Fatal(err)
	}
	res, err := bs.s.Apply(bs.index, data)
	if err != nil {
		bs.b.Fatal(err)
	}
	return res
}

var benchPayload = bytes.Repeat([]byte("x"), 200)

func (bs *benchStore) submitCmd(n int) *Submit {
	c := &Submit{IDs: make([]string, n), Specs: make([]Spec, n)}
	for i := range c.Specs {
		bs.id++
		c.IDs[i] = fmt.Sprintf("01JBENCH%018d", bs.id)
		c.Specs[i] = Spec{Plugin: "echo", Payload: benchPayload, Priority: bs.id % 3}
	}
	return c
}

func (bs *benchStore) fill(n int) {
	for n > 0 {
		k := min(n, 256)
		bs.apply(bs.submitCmd(k))
		n -= k
	}
}

func reportsFor(ls []Lease) *Complete {
	c := &Complete{Reports: make([]Report, len(ls))}
	for i, l := range ls {
		c.Reports[i] = Report{ID: l.Job.ID, Token: l.Token, Node: "n1", Outcome: OutcomeSucceeded, Result: []byte("ok")}
	}
	return c
}

// BenchmarkSubmit applies entries of 256 submits with 200-byte payloads.
func BenchmarkSubmit(b *testing.B) {
	bs := newBenchStore(b)
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		c := bs.submitCmd(256)
		bs.index++
		bs.now = bs.now.Add(time.Millisecond)
		data, _ := Encode(Entry{Now: bs.now, Cmds: []Command{c}})
		b.StartTimer()
		if _, err := bs.s.Apply(bs.index, data); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*256)/b.Elapsed().Seconds(), "jobs/s")
}

// BenchmarkClaim claims batches of 64 from a queue of 10k+ jobs.
func BenchmarkClaim(b *testing.B) {
	bs := newBenchStore(b)
	bs.fill(10000)
	claim := &Claim{Node: "n1", Slots: map[string]int{"echo": 64}}
	b.ReportAllocs()
	for b.Loop() {
		res := bs.apply(claim)
		b.StopTimer()
		bs.apply(reportsFor(res[0].Leases), bs.submitCmd(64))
		b.StartTimer()
	}
	b.ReportMetric(float64(b.N*64)/b.Elapsed().Seconds(), "jobs/s")
}

// BenchmarkComplete applies batches of 64 success reports.
func BenchmarkComplete(b *testing.B) {
	bs := newBenchStore(b)
	bs.fill(10000)
	claim := &Claim{Node: "n1", Slots: map[string]int{"echo": 64}}
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		res := bs.apply(claim, bs.submitCmd(64))
		c := reportsFor(res[0].Leases)
		b.StartTimer()
		bs.apply(c)
	}
	b.ReportMetric(float64(b.N*64)/b.Elapsed().Seconds(), "jobs/s")
}

// BenchmarkSnapshotRestore writes and restores 100k queued jobs.
func BenchmarkSnapshotRestore(b *testing.B) {
	const jobs = 100_000
	bs := newBenchStore(b)
	bs.fill(jobs)
	var buf bytes.Buffer
	b.ReportAllocs()
	for b.Loop() {
		buf.Reset()
		if _, err := bs.s.Snapshot().WriteTo(&buf); err != nil {
			b.Fatal(err)
		}
		if err := New().Restore(bytes.NewReader(buf.Bytes())); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(buf.Len())/jobs, "B/job-on-disk")
}

// BenchmarkEncode and BenchmarkDecode use a 256-spec submit entry.
func BenchmarkEncode(b *testing.B) {
	bs := newBenchStore(b)
	e := Entry{Now: t0, Cmds: []Command{bs.submitCmd(256)}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Encode(e); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	bs := newBenchStore(b)
	data, _ := Encode(Entry{Now: t0, Cmds: []Command{bs.submitCmd(256)}})
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMemoryPerJob reports the live heap per queued 200-byte job.
func BenchmarkMemoryPerJob(b *testing.B) {
	const jobs = 100_000
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		bs := newBenchStore(b)
		bs.fill(jobs)
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/jobs, "heap-B/job")
		runtime.KeepAlive(bs.s)
	}
}
