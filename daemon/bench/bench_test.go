package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/corral-dev/corral/daemon/testcluster"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testcluster.RemoveBinary()
	os.Exit(code)
}

func ms(n float64) time.Duration { return time.Duration(n * float64(time.Millisecond)) }

func TestPercentileNearestRank(t *testing.T) {
	ten := []time.Duration{ms(1), ms(2), ms(3), ms(4), ms(5), ms(6), ms(7), ms(8), ms(9), ms(10)}
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = ms(float64(i + 1))
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one sample", []time.Duration{ms(7)}, 99, ms(7)},
		{"p50 of ten is the 5th", ten, 50, ms(5)},
		{"p90 of ten is the 9th", ten, 90, ms(9)},
		{"p99 of ten is the max", ten, 99, ms(10)},
		{"p100 is the max", ten, 100, ms(10)},
		{"tiny p is the min", ten, 0.1, ms(1)},
		{"p99 of 100 is the 99th", hundred, 99, ms(99)},
		{"p50 of 100 is the 50th", hundred, 50, ms(50)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Percentile(tt.sorted, tt.p); got != tt.want {
				t.Fatalf("Percentile(p=%v) = %v, want %v", tt.p, got, tt.want)
			}
		})
	}
}

func TestSummarizeSortsAndAggregates(t *testing.T) {
	if s := Summarize(nil); s != (Summary{}) {
		t.Fatalf("Summarize(nil) = %+v, want zero", s)
	}
	// Unsorted input, one outlier.
	in := []time.Duration{ms(4), ms(1), ms(100), ms(3), ms(2)}
	s := Summarize(in)
	want := Summary{N: 5, Mean: ms(22), P50: ms(3), P90: ms(100), P99: ms(100), Max: ms(100)}
	if s != want {
		t.Fatalf("Summarize = %+v, want %+v", s, want)
	}
}

func TestRecorderIsSafeForConcurrentUse(t *testing.T) {
	var r recorder
	done := make(chan struct{})
	for g := range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 1000 {
				r.add(time.Duration(g*1000 + i))
			}
		}()
	}
	for range 8 {
		<-done
	}
	s := r.summary()
	if s.N != 8000 || s.Max != 7999 {
		t.Fatalf("summary = %+v, want N=8000 Max=7999", s)
	}
}

func TestPayloadIsExactSizeNoOpEcho(t *testing.T) {
	for _, size := range []int{minSize, 15, 200, 4096} {
		p := payload(size)
		if len(p) != size {
			t.Fatalf("payload(%d) has %d bytes", size, len(p))
		}
		var v struct {
			Sleep string `json:"sleep"`
		}
		dec := json.NewDecoder(bytes.NewReader(p))
		dec.DisallowUnknownFields() // as the echo plugin decodes it
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("payload(%d) = %s: %v", size, p, err)
		}
		if d, err := time.ParseDuration(v.Sleep); err != nil || d != 0 {
			t.Fatalf("payload(%d) sleep %q = %v, %v; want 0", size, v.Sleep, d, err)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	steady := func(f func(c *Config)) Config {
		c := DefaultConfig()
		c.Local = 1
		f(&c)
		return c
	}
	burndown := func(f func(c *Config)) Config {
		return steady(func(c *Config) { c.Mode = ModeBurndown; f(c) })
	}
	tests := []struct {
		name string
		cfg  Config
		want string // "" = valid
	}{
		{"default steady local", steady(func(*Config) {}), ""},
		{"default burndown local", burndown(func(*Config) {}), ""},
		{"address instead of local", steady(func(c *Config) { c.Local = 0; c.Addresses = []string{"127.0.0.1:4780"} }), ""},
		{"no target", steady(func(c *Config) { c.Local = 0 }), "give -local N"},
		{"both targets", steady(func(c *Config) { c.Addresses = []string{"x:1"} }), "-local and -address"},
		{"negative local", steady(func(c *Config) { c.Local = -1 }), "-local=-1"},
		{"too many local", steady(func(c *Config) { c.Local = 10 }), "-local=10"},
		{"no mode", steady(func(c *Config) { c.Mode = ModeInvalid }), "-mode"},
		{"echo slots", steady(func(c *Config) { c.EchoConcurrency = 0 }), "-echo-concurrency=0"},
		{"empty queue", steady(func(c *Config) { c.Queue = "" }), "-queue"},
		{"via leader", steady(func(c *Config) { c.Via = ViaLeader }), ""},
		{"via followers", steady(func(c *Config) { c.Via = ViaFollowers }), ""},
		{"via typo", steady(func(c *Config) { c.Via = "leaders" }), `-via="leaders"`},
		{"tiny payload", steady(func(c *Config) { c.Size = 5 }), "-size=5"},
		{"no workers", steady(func(c *Config) { c.Inflight = 0 }), "-inflight=0"},
		{"no window", steady(func(c *Config) { c.Duration = 0 }), "-duration=0s"},
		{"negative warmup", steady(func(c *Config) { c.Warmup = -time.Second }), "-warmup=-1s"},
		{"steady ignores burndown flags", steady(func(c *Config) { c.Jobs = 0 }), ""},
		{"no jobs", burndown(func(c *Config) { c.Jobs = 0 }), "-jobs=0"},
		{"no batch", burndown(func(c *Config) { c.Batch = -2 }), "-batch=-2"},
		{"no submitters", burndown(func(c *Config) { c.Submitters = 0 }), "-submitters=0"},
		{"no timeout", burndown(func(c *Config) { c.Timeout = 0 }), "-timeout=0s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want ErrInvalidConfig naming %q", err, tt.want)
			}
		})
	}
}

func TestParseMode(t *testing.T) {
	for _, m := range []Mode{ModeSteady, ModeBurndown} {
		got, err := ParseMode(m.String())
		if err != nil || got != m {
			t.Fatalf("ParseMode(%q) = %v, %v", m.String(), got, err)
		}
	}
	if _, err := ParseMode("soak"); !errors.Is(err, ErrBadMode) {
		t.Fatalf("ParseMode(soak) = %v, want ErrBadMode", err)
	}
}

func TestResultLineParses(t *testing.T) {
	r := &Result{
		Mode: "burndown", Nodes: 3, Jobs: 1000, JobsPerSec: 1234.4, Seconds: 0.81,
		E2E:    Summary{P50: ms(1.5), P99: ms(20)},
		Submit: Summary{P50: ms(0.25), P99: ms(3)},
		Batch:  100, Size: 200,
	}
	line := r.Line()
	if !strings.HasPrefix(line, "RESULT mode=burndown nodes=3 jobs=1000 jobs_per_s=1234 e2e_p50_ms=1.500 e2e_p99_ms=20.000 submit_p50_ms=0.250 submit_p99_ms=3.000 ") {
		t.Fatalf("Line() = %q: required fields missing or out of order", line)
	}
	f, err := ParseResult(line)
	if err != nil {
		t.Fatal(err)
	}
	if f["batch"] != "100" || f["errors"] != "0" || f["duration_s"] != "0.81" {
		t.Fatalf("ParseResult(%q) = %v", line, f)
	}
	if _, ok := f["inflight"]; ok {
		t.Fatalf("burndown line has inflight: %q", line)
	}
	m := r.Map()
	if m["jobs"] != 1000 || m["e2e_p99_ms"] != 20.0 || m["mode"] != "burndown" {
		t.Fatalf("Map() = %v", m)
	}
	if _, err := ParseResult("RESULTS a=1"); !errors.Is(err, ErrNotResult) {
		t.Fatalf("ParseResult(other line) = %v, want ErrNotResult", err)
	}
}

// benchCommand runs `corral bench args...` with TMPDIR set to a fresh
// directory and returns stdout, stderr, the exit code and that directory.
func benchCommand(t *testing.T, args ...string) (stdout, stderr string, code int, tmp string) {
	t.Helper()
	bin := testcluster.CorralBinary(t)
	tmp = filepath.Join(t.TempDir(), "tmp")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"bench"}, args...)...)
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		t.Fatalf("run corral bench: %v", err)
	}
	return out.String(), errOut.String(), cmd.ProcessState.ExitCode(), tmp
}

// processesUsing returns the pids of processes whose command line or
// environment mentions dir.
func processesUsing(t *testing.T, dir string) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		for _, f := range []string{"cmdline", "environ"} {
			b, err := os.ReadFile(filepath.Join("/proc", e.Name(), f))
			if err == nil && bytes.Contains(b, []byte(dir)) {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}

func TestLocalBurndownCleansUp(t *testing.T) {
	stdout, stderr, code, tmp := benchCommand(t, "-local", "1", "-mode", "burndown", "-jobs", "200", "-batch", "50")
	if code != 0 {
		t.Fatalf("corral bench exited %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	f, err := ParseResult(lines[len(lines)-1])
	if err != nil {
		t.Fatalf("last stdout line %q: %v\nstderr: %s", lines[len(lines)-1], err, stderr)
	}
	if f["mode"] != "burndown" || f["nodes"] != "1" || f["jobs"] != "200" || f["errors"] != "0" || f["batch"] != "50" {
		t.Fatalf("RESULT fields = %v, want mode=burndown nodes=1 jobs=200 errors=0 batch=50", f)
	}
	for _, k := range []string{"jobs_per_s", "e2e_p50_ms", "e2e_p99_ms", "submit_p50_ms", "submit_p99_ms"} {
		if v, err := strconv.ParseFloat(f[k], 64); err != nil || v <= 0 {
			t.Fatalf("RESULT %s=%q, want a positive number", k, f[k])
		}
	}

	// Every directory the bench made is gone...
	left, err := os.ReadDir(tmp)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Fatalf("bench left %d entries in its temp dir, e.g. %s", len(left), left[0].Name())
	}
	// ...and so is every process it started (agents and their plugins
	// inherit TMPDIR). A killed process may take a moment to be reaped.
	deadline := time.Now().Add(5 * time.Second)
	for {
		pids := processesUsing(t, tmp)
		if len(pids) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes still running after the bench exited: %v", pids)
		}
		time.Sleep(50 * time.Millisecond) // polling /proc with a deadline
	}
}

func TestBadFlagsFailWithOneLine(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"-local", "1", "-inflight", "0"}, "error: -inflight=0: must be at least 1"},
		{[]string{"-local", "1", "-mode", "soak"}, `error: -mode="soak": want steady or burndown`},
		{[]string{"-local", "2", "-address", "127.0.0.1:1"}, "error: -local and -address exclude each other"},
		{[]string{"-local", "1", "extra"}, `error: bench takes no arguments, got ["extra"]`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			stdout, stderr, code, tmp := benchCommand(t, tt.args...)
			if code != 1 || stdout != "" {
				t.Fatalf("exit %d, stdout %q; want exit 1 and no output", code, stdout)
			}
			// One line: the problem, the usage form, where the help is.
			if !strings.HasPrefix(stderr, tt.want) || strings.Count(stderr, "\n") != 1 {
				t.Fatalf("stderr %q, want one line starting %q", stderr, tt.want)
			}
			if !strings.Contains(stderr, "usage: corral bench (-local N | -address ADDR)") || !strings.Contains(stderr, "(see corral bench -h)") {
				t.Fatalf("stderr lacks the usage form and the help hint: %q", stderr)
			}
			if left, _ := os.ReadDir(tmp); len(left) != 0 {
				t.Fatalf("a rejected run made %s", left[0].Name())
			}
		})
	}
}

// TestPickVia: -via leader keeps the node the cluster names as leader,
// -via followers the others, whichever node is asked first.
func TestPickVia(t *testing.T) {
	var leaderHTTP string
	var addrs []string
	for range 3 {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/v1/status/leader" {
				http.NotFound(w, r)
				return
			}
			fmt.Fprintf(w, `{"id":"n2","node":"n2","address":"127.0.0.1:1","http":%q}`, leaderHTTP)
		}))
		t.Cleanup(srv.Close)
		addrs = append(addrs, srv.URL)
	}
	leaderHTTP = strings.TrimPrefix(addrs[1], "http://")
	ctx := context.Background()
	got, err := pickVia(ctx, addrs, ViaLeader, "")
	if err != nil || len(got) != 1 || got[0] != addrs[1] {
		t.Fatalf("pickVia(leader) = %v, %v; want [%s]", got, err, addrs[1])
	}
	got, err = pickVia(ctx, addrs, ViaFollowers, "")
	if err != nil || len(got) != 2 || got[0] != addrs[0] || got[1] != addrs[2] {
		t.Fatalf("pickVia(followers) = %v, %v; want [%s %s]", got, err, addrs[0], addrs[2])
	}
	// A single-node cluster has no follower to load: a clear error.
	if _, err := pickVia(ctx, addrs[1:2], ViaFollowers, ""); err == nil || !strings.Contains(err.Error(), "none of the nodes") {
		t.Fatalf("pickVia(followers) on the leader alone = %v, want an error saying none is a follower", err)
	}
}
