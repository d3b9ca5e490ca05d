package rpc

import (
	"context"
	"fmt"
	"io"
	"reflect"
)

// Pipe connects the two ends of a stream in-process, for the leader's own
// worker: the same messages as over the wire, handed over by pointer with
// no framing and no encoding (Nomad's in-process RPC handler). A value
// given to Send must not be changed afterwards. Both ends fail with
// io.EOF (or ctx's error) once either is closed or ctx ends.
func Pipe(ctx context.Context) (a, b *PipeEnd) {
	ctx, cancel := context.WithCancel(ctx)
	ab, ba := make(chan any, 64), make(chan any, 64)
	return &PipeEnd{ctx: ctx, cancel: cancel, in: ba, out: ab}, &PipeEnd{ctx: ctx, cancel: cancel, in: ab, out: ba}
}

// PipeEnd is one end of a Pipe.
type PipeEnd struct {
	ctx    context.Context
	cancel context.CancelFunc
	in     <-chan any
	out    chan<- any
}

// Send hands v (a pointer) to the other end.
func (p *PipeEnd) Send(v any) error {
	if p.ctx.Err() != nil {
		return p.err()
	}
	select {
	case p.out <- v:
		return nil
	case <-p.ctx.Done():
		return p.err()
	}
}

// Recv stores the next value sent from the other end into v, a pointer to
// a value of the same type.
func (p *PipeEnd) Recv(v any) error {
	if p.ctx.Err() != nil {
		return p.err()
	}
	select {
	case got := <-p.in:
		dst, src := reflect.ValueOf(v), reflect.ValueOf(got)
		if dst.Kind() != reflect.Pointer || src.Type() != dst.Type() {
			return fmt.Errorf("%w: pipe received %T into %T", ErrBadFrame, got, v)
		}
		dst.Elem().Set(src.Elem())
		return nil
	case <-p.ctx.Done():
		return p.err()
	}
}

// Close ends both ends.
func (p *PipeEnd) Close() error {
	p.cancel()
	return nil
}

// Context is cancelled when the pipe ends.
func (p *PipeEnd) Context() context.Context { return p.ctx }

func (p *PipeEnd) err() error {
	if err := context.Cause(p.ctx); err != nil && err != context.Canceled {
		return err
	}
	return io.EOF
}
