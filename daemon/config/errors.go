package config

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

var (
	// ErrInvalid is matched (errors.Is) by every error from Load that comes
	// from the contents of a file, and by every error from Validate.
	ErrInvalid = errors.New("invalid configuration")
)

// fileError is a decode failure: HCL diagnostics printed on one line as
// "file:line,col: what; detail".
type fileError struct {
	diags hcl.Diagnostics
}

func diagError(diags hcl.Diagnostics) error {
	var errs hcl.Diagnostics
	for _, d := range diags {
		if d.Severity == hcl.DiagError {
			errs = append(errs, d)
		}
	}
	// Report in source order: the first problem in the file comes first.
	sort.SliceStable(errs, func(i, j int) bool {
		a, b := errs[i].Subject, errs[j].Subject
		return a != nil && b != nil && a.Filename == b.Filename && a.Start.Byte < b.Start.Byte
	})
	return &fileError{diags: errs}
}

// Error formats the first diagnostic and counts the rest.
func (e *fileError) Error() string {
	if len(e.diags) == 0 {
		return ErrInvalid.Error()
	}
	d := e.diags[0]
	var b strings.Builder
	if d.Subject != nil {
		fmt.Fprintf(&b, "%s:%d,%d: ", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column)
	}
	b.WriteString(lowerFirst(oneLine(d.Summary)))
	if detail := oneLine(d.Detail); detail != "" {
		b.WriteString(": ")
		b.WriteString(detail)
	}
	if n := len(e.diags) - 1; n > 0 {
		fmt.Fprintf(&b, " (and %d more error(s))", n)
	}
	return b.String()
}

// Is makes errors.Is(err, ErrInvalid) true.
func (e *fileError) Is(target error) bool { return target == ErrInvalid }

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	// Leave acronyms ("JSON ...") alone.
	if len(s) > 1 && s[1] >= 'A' && s[1] <= 'Z' {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}
