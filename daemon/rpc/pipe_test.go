package rpc

import (
	"context"
	"errors"
	"io"
	"testing"
)

// TestPipe: values cross the pipe both ways in order; a value of another
// type is refused; closing one end ends both with io.EOF.
func TestPipe(t *testing.T) {
	a, b := Pipe(context.Background())
	if err := a.Send(&Up{Seq: 1}); err != nil {
		t.Fatal(err)
	}
	if err := a.Send(&Up{Seq: 2}); err != nil {
		t.Fatal(err)
	}
	for want := uint64(1); want <= 2; want++ {
		var u Up
		if err := b.Recv(&u); err != nil || u.Seq != want {
			t.Fatalf("recv %d: %+v %v", want, u, err)
		}
	}
	if err := b.Send(&Down{Acked: 7}); err != nil {
		t.Fatal(err)
	}
	var d Down
	if err := a.Recv(&d); err != nil || d.Acked != 7 {
		t.Fatalf("recv down: %+v %v", d, err)
	}
	if err := a.Send(&Hello{Node: "x"}); err != nil {
		t.Fatal(err)
	}
	var wrong Up
	if err := b.Recv(&wrong); !errors.Is(err, ErrBadFrame) {
		t.Fatalf("a Hello received as an Up: %v", err)
	}
	a.Close()
	if err := b.Recv(&wrong); !errors.Is(err, io.EOF) {
		t.Fatalf("recv after close: %v", err)
	}
	if err := b.Send(&Up{}); !errors.Is(err, io.EOF) {
		t.Fatalf("send after close: %v", err)
	}
}
