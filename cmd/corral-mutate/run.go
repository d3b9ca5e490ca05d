package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"
)

// defaultList is the mutation list, relative to the module root.
const defaultList = "cmd/corral-mutate/mutants.txt"

// verdict is what happened to one mutant.
type verdict int

const (
	killed verdict = iota
	survived
	invalid
)

func (v verdict) String() string {
	switch v {
	case killed:
		return "KILLED"
	case survived:
		return "SURVIVED"
	default:
		return "INVALID"
	}
}

// outcome is one mutant's result.
type outcome struct {
	m       mutant
	line    int // line of the snippet in the file
	verdict verdict
	why     string // for invalid and timeouts
	took    time.Duration
}

// options are the command-line settings.
type options struct {
	root    string
	list    string
	only    *regexp.Regexp
	timeout time.Duration
	workers int
}

// run is the whole command; it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	opts, err := parseFlags(args, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "corral-mutate: %v\n", err)
		return 2
	}
	f, err := os.Open(opts.list)
	if err != nil {
		fmt.Fprintf(stderr, "corral-mutate: %v\n", err)
		return 2
	}
	mutants, err := parseList(f)
	f.Close()
	if err != nil {
		fmt.Fprintf(stderr, "corral-mutate: %s: %v\n", opts.list, err)
		return 2
	}
	if opts.only != nil {
		var sel []mutant
		for _, m := range mutants {
			if opts.only.MatchString(m.File) || opts.only.MatchString(m.Rule) || opts.only.MatchString(m.Pkg) {
				sel = append(sel, m)
			}
		}
		mutants = sel
		if len(mutants) == 0 {
			fmt.Fprintf(stderr, "corral-mutate: -only %s selects no mutant\n", opts.only)
			return 2
		}
	}
	tmp, err := os.MkdirTemp("", "corral-mutate-")
	if err != nil {
		fmt.Fprintf(stderr, "corral-mutate: %v\n", err)
		return 2
	}
	defer os.RemoveAll(tmp)

	fmt.Fprintf(stdout, "corral-mutate: %d mutants from %s, module %s\n", len(mutants), opts.list, opts.root)
	if err := baseline(ctx, opts, mutants, stdout); err != nil {
		fmt.Fprintf(stderr, "corral-mutate: %v\n", err)
		return 2
	}

	results := make([]outcome, len(mutants))
	var (
		mu   sync.Mutex
		next int
		wg   sync.WaitGroup
	)
	for w := 0; w < opts.workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= len(mutants) || ctx.Err() != nil {
					return
				}
				o := try(ctx, opts, tmp, i, mutants[i])
				mu.Lock()
				results[i] = o
				report(stdout, o)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		fmt.Fprintln(stderr, "corral-mutate: interrupted")
		return 2
	}

	counts := map[verdict]int{}
	for _, o := range results {
		counts[o.verdict]++
	}
	if counts[survived] > 0 {
		fmt.Fprintln(stdout, "survivors (rules no test guards):")
		for _, o := range results {
			if o.verdict == survived {
				fmt.Fprintf(stdout, "  %s:%d  %s\n", o.m.File, o.line, o.m.Rule)
			}
		}
	}
	summary := fmt.Sprintf("MUTATION total=%d killed=%d survived=%d", len(results), counts[killed], counts[survived])
	if counts[invalid] > 0 {
		summary += fmt.Sprintf(" invalid=%d", counts[invalid])
	}
	fmt.Fprintln(stdout, summary)
	if counts[survived] > 0 || counts[invalid] > 0 {
		return 1
	}
	return 0
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("corral-mutate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		opts options
		only string
	)
	fs.StringVar(&opts.root, "C", "", "module root (default: the module of the current directory)")
	fs.StringVar(&opts.list, "list", "", "mutation list (default: "+defaultList+" in the module)")
	fs.StringVar(&only, "only", "", "run only mutants whose file, package or rule matches this regexp")
	fs.DurationVar(&opts.timeout, "timeout", 5*time.Minute, "go test -timeout for each run")
	fs.IntVar(&opts.workers, "p", 1, "mutants tested at once")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: corral-mutate [-C DIR] [-list FILE] [-only REGEXP] [-timeout D] [-p N]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return opts, err
	}
	if fs.NArg() > 0 {
		return opts, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if opts.workers < 1 {
		return opts, fmt.Errorf("-p %d: want at least 1", opts.workers)
	}
	if only != "" {
		re, err := regexp.Compile(only)
		if err != nil {
			return opts, fmt.Errorf("-only: %w", err)
		}
		opts.only = re
	}
	if opts.root == "" {
		root, err := moduleRoot()
		if err != nil {
			return opts, err
		}
		opts.root = root
	}
	root, err := filepath.Abs(opts.root)
	if err != nil {
		return opts, err
	}
	opts.root = root
	if opts.list == "" {
		opts.list = filepath.Join(opts.root, defaultList)
	}
	return opts, nil
}

// moduleRoot finds the directory of the go.mod above the working directory.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod here or above: run inside the module or pass -C")
		}
		dir = parent
	}
}

// baseline runs every package's named tests once without mutation: they
// must pass, or the check means nothing.
func baseline(ctx context.Context, opts options, mutants []mutant, stdout io.Writer) error {
	byPkg := map[string]map[string]bool{}
	for _, m := range mutants {
		if byPkg[m.Pkg] == nil {
			byPkg[m.Pkg] = map[string]bool{}
		}
		byPkg[m.Pkg][m.Run] = true
	}
	pkgs := make([]string, 0, len(byPkg))
	for p := range byPkg {
		pkgs = append(pkgs, p)
	}
	sort.Strings(pkgs)
	for _, pkg := range pkgs {
		var pats []string
		for p := range byPkg[pkg] {
			pats = append(pats, "(?:"+p+")")
		}
		sort.Strings(pats)
		start := time.Now()
		out, err := goTest(ctx, opts, "", pkg, strings.Join(pats, "|"))
		if err != nil || bytes.Contains(out, []byte("no tests to run")) {
			return fmt.Errorf("baseline: the tests of %s fail without any mutation (fix them first):\n%s", pkg, out)
		}
		fmt.Fprintf(stdout, "baseline ok  %-14s %5.1fs\n", pkg, time.Since(start).Seconds())
	}
	return nil
}

// try applies mutant i through an overlay and runs its tests.
func try(ctx context.Context, opts options, tmp string, i int, m mutant) outcome {
	o := outcome{m: m, verdict: invalid}
	path := filepath.Join(opts.root, filepath.FromSlash(m.File))
	src, line, err := locate(path, m.From)
	if err != nil {
		o.why = err.Error()
		return o
	}
	o.line = line
	mutated := strings.Replace(src, m.From, m.To, 1)

	dir := filepath.Join(tmp, fmt.Sprintf("m%03d", i))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		o.why = err.Error()
		return o
	}
	file := filepath.Join(dir, filepath.Base(path))
	if err := os.WriteFile(file, []byte(mutated), 0o644); err != nil {
		o.why = err.Error()
		return o
	}
	overlay, err := json.Marshal(map[string]map[string]string{"Replace": {path: file}})
	if err != nil {
		o.why = err.Error()
		return o
	}
	overlayFile := filepath.Join(dir, "overlay.json")
	if err := os.WriteFile(overlayFile, overlay, 0o644); err != nil {
		o.why = err.Error()
		return o
	}

	start := time.Now()
	out, err := goTest(ctx, opts, overlayFile, m.Pkg, m.Run)
	o.took = time.Since(start)
	switch {
	case err == nil && bytes.Contains(out, []byte("no tests to run")):
		o.why = "the run pattern matches no test"
	case err == nil:
		o.verdict = survived
	case bytes.Contains(out, []byte("[build failed]")) || bytes.Contains(out, []byte("[setup failed]")):
		o.why = "does not build:\n" + indent(lastLines(out, 10))
	default:
		o.verdict = killed
		if bytes.Contains(out, []byte("panic: test timed out")) {
			o.why = "by the test timeout"
		}
	}
	return o
}

// locate reads the file at path and returns its text and the line of
// snippet, which must occur exactly once in it.
func locate(path, snippet string) (src string, line int, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", 0, err
	}
	src = string(b)
	switch n := strings.Count(src, snippet); n {
	case 1:
	case 0:
		return "", 0, errors.New("snippet not found (the code moved: update the list)")
	default:
		return "", 0, fmt.Errorf("snippet found %d times: make it unique", n)
	}
	return src, strings.Count(src[:strings.Index(src, snippet)], "\n") + 1, nil
}

// goTest runs go test on pkg with the run pattern, and the overlay if set.
func goTest(ctx context.Context, opts options, overlay, pkg, pattern string) ([]byte, error) {
	args := []string{"test", "-count=1", "-timeout", opts.timeout.String(), "-run", pattern}
	if overlay != "" {
		args = append(args, "-overlay", overlay)
	}
	args = append(args, pkg)
	ctx, cancel := context.WithTimeout(ctx, opts.timeout+2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = opts.root
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("go %s: %w", strings.Join(args, " "), err)
	}
	return out, nil
}

// report prints one mutant's line (and, for a survivor, the change).
func report(w io.Writer, o outcome) {
	loc := o.m.File
	if o.line > 0 {
		loc = fmt.Sprintf("%s:%d", o.m.File, o.line)
	}
	fmt.Fprintf(w, "%-8s %-28s %5.1fs  %s  [%s %s]\n", o.verdict, loc, o.took.Seconds(), o.m.Rule, o.m.Pkg, o.m.Run)
	if o.why != "" {
		fmt.Fprintf(w, "         %s\n", o.why)
	}
	if o.verdict == survived {
		fmt.Fprintf(w, "%s%s", prefixLines("         - ", o.m.From), prefixLines("         + ", o.m.To))
	}
}

func prefixLines(prefix, s string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		b.WriteString(prefix + l + "\n")
	}
	return b.String()
}

func indent(s string) string { return prefixLines("           ", strings.TrimRight(s, "\n")) }

// lastLines returns the last n lines of out.
func lastLines(out []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
