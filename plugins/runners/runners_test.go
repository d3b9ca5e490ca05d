package runners

import (
	"runtime"
	"sync"
	"testing"
	"time"
)

// Functions run one after another reuse one goroutine.
func TestSequentialRunsReuseOneGoroutine(t *testing.T) {
	var p Pool
	defer p.Close()
	for i := range 100 {
		done := make(chan int)
		p.Run(func() { done <- i })
		if got := <-done; got != i {
			t.Fatalf("run %d ran %d", i, got)
		}
		waitIdle(t, &p, 1)
	}
	if p.started != 1 {
		t.Fatalf("100 sequential runs started %d goroutines, want 1", p.started)
	}
}

// Run never waits for a busy runner: concurrent functions all run at once.
func TestConcurrentRunsDoNotWait(t *testing.T) {
	var p Pool
	defer p.Close()
	const n = 50
	var started sync.WaitGroup
	started.Add(n)
	release := make(chan struct{})
	for range n {
		p.Run(func() {
			started.Done()
			<-release
		})
	}
	started.Wait() // deadlocks (test timeout) if Run serialized them
	close(release)
	waitIdle(t, &p, n)
}

// Close ends the idle runners.
func TestCloseEndsIdleRunners(t *testing.T) {
	before := runtime.NumGoroutine()
	var p Pool
	for range 20 {
		p.Run(func() {})
	}
	p.Close()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines after Close, %d before the pool", runtime.NumGoroutine(), before)
		}
		time.Sleep(10 * time.Millisecond)
	}
	done := make(chan struct{})
	p.Run(func() { close(done) })
	<-done
}

// waitIdle waits until n runners are idle.
func waitIdle(t *testing.T, p *Pool, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		p.mu.Lock()
		idle := len(p.idle)
		p.mu.Unlock()
		if idle == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d idle runners, want %d", idle, n)
		}
		time.Sleep(time.Millisecond)
	}
}
