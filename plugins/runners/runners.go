// Package runners runs short jobs on reused goroutines, so the stack a job
// grows (JSON decoding, gRPC sends) is grown once per goroutine rather than
// once per job.
package runners

import "sync"

// MaxIdle bounds the goroutines kept waiting for the next job.
const MaxIdle = 1024

// Pool runs functions on reused goroutines (on a fresh goroutine per job,
// stack growth was a quarter of a no-op plugin's CPU). Idle runners wait
// for the next function; beyond MaxIdle they exit. The zero Pool is ready
// to use; it must not be copied after first use.
type Pool struct {
	mu      sync.Mutex
	idle    []chan func()
	closed  bool
	started int // goroutines started, for tests
}

// Run runs f on an idle runner goroutine, or on a new one. It never waits
// for a runner to become free.
func (p *Pool) Run(f func()) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		next := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		next <- f
		return
	}
	p.started++
	p.mu.Unlock()
	go p.loop(make(chan func()), f)
}

// Close ends the idle runners; busy ones end when their function returns.
// Run still works after Close, on goroutines that end after one function.
func (p *Pool) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for _, next := range p.idle {
		close(next)
	}
	p.idle = nil
}

// loop runs f, then the functions handed to it through next, until the pool
// is closed or has enough idle runners.
func (p *Pool) loop(next chan func(), f func()) {
	for ok := true; ok; f, ok = <-next {
		f()
		p.mu.Lock()
		if p.closed || len(p.idle) >= MaxIdle {
			p.mu.Unlock()
			return
		}
		p.idle = append(p.idle, next)
		p.mu.Unlock()
	}
}
