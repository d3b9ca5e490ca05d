package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A tiny module with one rule (clamp to [lo, hi]) whose test checks only
// the upper bound: the lower bound is unguarded.
var fixture = map[string]string{
	"go.mod": "module example.com/fixture\n\ngo 1.21\n",
	"clamp/clamp.go": `// Package clamp bounds numbers.
package clamp

// Clamp bounds v to [lo, hi].
func Clamp(v, lo, hi int) int {
	if v > hi {
		return hi
	}
	if v < lo {
		return lo
	}
	return v
}
`,
	"clamp/clamp_test.go": `package clamp

import "testing"

func TestUpper(t *testing.T) {
	if got := Clamp(7, 0, 5); got != 5 {
		t.Fatalf("Clamp(7, 0, 5) = %d", got)
	}
}
`,
}

func writeFixture(t *testing.T, list string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range fixture {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "mutants.txt"), []byte(list), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func runFixture(t *testing.T, dir string, extra ...string) (int, string) {
	t.Helper()
	t.Setenv("GOWORK", "off")
	t.Setenv("GOFLAGS", "-mod=mod")
	var out, errOut bytes.Buffer
	args := append([]string{"-C", dir, "-list", filepath.Join(dir, "mutants.txt")}, extra...)
	code := run(context.Background(), args, &out, &errOut)
	return code, out.String() + errOut.String()
}

// The checker must reject what it exists to catch: a mutant no test kills
// is reported as a survivor and fails the run, next to a killed one; the
// real file is left as it was.
func TestReportsSurvivor(t *testing.T) {
	dir := writeFixture(t, `# fixture list
rule: upper bound
file: clamp/clamp.go
from: if v > hi {
to: if v > hi+5 {
test: ./clamp ^TestUpper$

rule: lower bound
file: clamp/clamp.go
from: if v < lo {
to: if false {
test: ./clamp ^TestUpper$
`)
	code, out := runFixture(t, dir)
	if code != 1 {
		t.Fatalf("exit code %d, want 1 (a survivor); output:\n%s", code, out)
	}
	for _, want := range []string{
		"KILLED   clamp/clamp.go:6",
		"SURVIVED clamp/clamp.go:9",
		"survivors (rules no test guards):\n  clamp/clamp.go:9  lower bound",
		"MUTATION total=2 killed=1 survived=1\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	src, err := os.ReadFile(filepath.Join(dir, "clamp", "clamp.go"))
	if err != nil || string(src) != fixture["clamp/clamp.go"] {
		t.Fatalf("the real file was changed (err %v):\n%s", err, src)
	}

	// With only the killed mutant selected, the run passes.
	code, out = runFixture(t, dir, "-only", "upper")
	if code != 0 || !strings.Contains(out, "MUTATION total=1 killed=1 survived=0\n") {
		t.Fatalf("killed-only run: exit %d, output:\n%s", code, out)
	}
}

// A mutant whose snippet is not in the file, or that does not build,
// proves nothing: it is invalid and fails the run.
func TestReportsInvalidMutants(t *testing.T) {
	dir := writeFixture(t, `rule: moved code
file: clamp/clamp.go
from: if v >= hi {
to: if true {
test: ./clamp ^TestUpper$

rule: broken build
file: clamp/clamp.go
from: return lo
to: return lo +
test: ./clamp ^TestUpper$

rule: no such test
file: clamp/clamp.go
from: return hi
to: return lo
test: ./clamp ^TestNothing$
`)
	code, out := runFixture(t, dir)
	if code != 1 {
		t.Fatalf("exit code %d, want 1; output:\n%s", code, out)
	}
	for _, want := range []string{"snippet not found", "does not build", "matches no test", "MUTATION total=3 killed=0 survived=0 invalid=3"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestParseList(t *testing.T) {
	ms, err := parseList(strings.NewReader("# c\nrule: r\nfile: f.go\nfrom: a\\n\\tb\nto:\ntest: ./p ^T$\n\nrule: r2\nfile: g.go\nfrom: x \ntest: ./q T\nto: y\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || ms[0].From != "a\n\tb" || ms[0].To != "" || ms[0].Pkg != "./p" || ms[0].Run != "^T$" || ms[1].From != "x " || ms[1].Line != 8 {
		t.Fatalf("parsed %+v", ms)
	}
	for _, bad := range []string{
		"rule: r\nfile: f\nfrom: a\nto: b\n",                       // no test
		"rule: r\nfile: f\nfrom: a\nto: a\ntest: ./p T\n",          // no change
		"rule: r\nfile: f\nfrom: a\nto: b\ntest: ./p T/sub\n",      // subtest
		"rule: r\nfile: f\nfrom: a\nto: b\ntest: ./p\n",            // no pattern
		"rule: r\nrule: s\nfile: f\nfrom: a\nto: b\ntest: ./p T\n", // twice
		"rule: r\nfile: f\nfrom: a\nto: b\ntest: ./p T\nwhat: x\n", // unknown key
		"# only comments\n",
	} {
		if _, err := parseList(strings.NewReader(bad)); !errors.Is(err, errList) {
			t.Errorf("list %q: err %v, want a list error", bad, err)
		}
	}
}

// TestCheckedInListMatchesTheCode: every mutant of the checked-in list
// names a file whose text holds its snippet exactly once, so a refactor
// that moves a rule's code fails here, in CI, instead of turning the
// mutant INVALID in the next (slow) mutation run.
func TestCheckedInListMatchesTheCode(t *testing.T) {
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(root, "cmd", "corral-mutate", "mutants.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	mutants, err := parseList(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(mutants) < 100 {
		t.Fatalf("the checked-in list has %d mutants, want the whole list (at least 100)", len(mutants))
	}
	for _, m := range mutants {
		if _, _, err := locate(filepath.Join(root, filepath.FromSlash(m.File)), m.From); err != nil {
			t.Errorf("line %d (%s): %s: %v", m.Line, m.Rule, m.File, err)
		}
	}
}
