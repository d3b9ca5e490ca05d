package builtin

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestLineWriter(t *testing.T) {
	var got []string
	w := &lineWriter{emit: func(l string) { got = append(got, l) }}
	long := strings.Repeat("x", maxLine+10)
	for _, chunk := range []string{"one\r\ntw", "o\n", long, "\nlast"} {
		if _, err := w.Write([]byte(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	w.flush()
	want := []string{"one", "two", long[:maxLine], long[maxLine:], "last"}
	if !slices.Equal(got, want) {
		t.Errorf("lines = %q, want %q", got, want)
	}
}

func TestServeUnknownName(t *testing.T) {
	if names := Names(); !slices.Equal(names, []string{"echo", "exec", "http"}) {
		t.Errorf("Names() = %v", names)
	}
	if err := Serve("nope"); !errors.Is(err, ErrUnknown) || !strings.Contains(err.Error(), "echo, exec, http") {
		t.Errorf("Serve(nope) = %v", err)
	}
}
