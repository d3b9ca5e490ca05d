package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
)

// mutant is one single-rule change and the tests that must notice it.
type mutant struct {
	// Rule says in one line what a user loses when the mutant survives.
	Rule string
	// File is the path of the mutated file, relative to the module root.
	File string
	// From is an exact snippet of File (it must occur exactly once); To
	// replaces it.
	From, To string
	// Pkg is the package to test (e.g. "./queue"), Run the -run pattern of
	// the tests that must fail.
	Pkg, Run string
	// Line is where the mutant is declared in the list (for messages).
	Line int
}

// errList is wrapped by every list parsing error.
var errList = errors.New("bad mutation list")

// parseList reads a mutation list: blocks of "key: value" lines separated
// by blank lines, '#' starting a comment line. Keys: rule, file, from, to,
// test ("PKG RUN-PATTERN"). In from and to, \n, \t and \\ are escapes, so
// a snippet can span lines; everything after "key:" and one space is the
// value, so trailing spaces count.
func parseList(r io.Reader) ([]mutant, error) {
	var (
		out  []mutant
		cur  *mutant
		seen map[string]bool
	)
	finish := func() error {
		if cur == nil {
			return nil
		}
		for _, k := range []string{"rule", "file", "from", "to", "test"} {
			if !seen[k] {
				return fmt.Errorf("%w: line %d: mutant without %q", errList, cur.Line, k)
			}
		}
		if cur.From == cur.To {
			return fmt.Errorf("%w: line %d: from and to are the same", errList, cur.Line)
		}
		out = append(out, *cur)
		cur = nil
		return nil
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		if strings.TrimSpace(line) == "" {
			if err := finish(); err != nil {
				return nil, err
			}
			continue
		}
		key, val, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("%w: line %d: want \"key: value\", got %q", errList, n, line)
		}
		val = strings.TrimPrefix(val, " ")
		if cur == nil {
			cur = &mutant{Line: n}
			seen = map[string]bool{}
		}
		if seen[key] {
			return nil, fmt.Errorf("%w: line %d: %q given twice", errList, n, key)
		}
		seen[key] = true
		switch key {
		case "rule":
			cur.Rule = strings.TrimSpace(val)
		case "file":
			cur.File = strings.TrimSpace(val)
		case "from":
			cur.From = unescape(val)
		case "to":
			cur.To = unescape(val)
		case "test":
			f := strings.Fields(val)
			if len(f) != 2 {
				return nil, fmt.Errorf("%w: line %d: test wants \"PKG RUN-PATTERN\", got %q", errList, n, val)
			}
			if _, err := regexp.Compile(f[1]); err != nil {
				return nil, fmt.Errorf("%w: line %d: run pattern: %w", errList, n, err)
			}
			if strings.Contains(f[1], "/") {
				return nil, fmt.Errorf("%w: line %d: run pattern %q names a subtest; name top-level tests only", errList, n, f[1])
			}
			cur.Pkg, cur.Run = f[0], f[1]
		default:
			return nil, fmt.Errorf("%w: line %d: unknown key %q (want rule, file, from, to, test)", errList, n, key)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read mutation list: %w", err)
	}
	if err := finish(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no mutants", errList)
	}
	return out, nil
}

// unescape turns \n, \t and \\ into a newline, a tab and a backslash.
var unescape = strings.NewReplacer(`\n`, "\n", `\t`, "\t", `\\`, `\`).Replace
