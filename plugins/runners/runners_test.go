package runners

import (
	"runtime"
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

// Run never waits for a busy runner: concurrent functions all run at once,
// each on its own goroutine.
func TestConcurrentRunsDoNotWait(t *testing.T) {
	var p Pool
	defer p.Close()
	const n = 50
	started := make(chan struct{}, n)
	release := make(chan struct{})
	defer func() {
		select {
		case <-release:
		default:
			close(release) // unblock the functions if the test failed early
		}
	}()
	// Run is called from another goroutine so that a Run that waits for a
	// busy runner fails the test at the deadline instead of hanging it.
	go func() {
		for range n {
			p.Run(func() {
				started <- struct{}{}
				<-release
			})
		}
	}()
	deadline := time.After(10 * time.Second)
	for i := range n {
		select {
		case <-started:
		case <-deadline:
			t.Fatalf("only %d of %d functions started while the others were blocked: Run waited for a busy runner", i, n)
		}
	}
	close(release)
	waitIdle(t, &p, n)
	p.mu.Lock()
	startedGoroutines := p.started
	p.mu.Unlock()
	if startedGoroutines != n {
		t.Fatalf("%d concurrent runs started %d goroutines, want %d", n, startedGoroutines, n)
	}
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
