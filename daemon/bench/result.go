package bench

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Result is the outcome of one run. Line and Map render it with the same
// key names.
type Result struct {
	// Mode is "steady" or "burndown".
	Mode string
	// Nodes is the number of nodes of the cluster.
	Nodes int
	// Via is which of them took the load: all, leader or followers.
	Via string
	// Jobs is the number of jobs that succeeded within the measurement.
	Jobs int
	// JobsPerSec is Jobs divided by the measured time.
	JobsPerSec float64
	// Seconds is the measured time: the window (steady) or first submit
	// to last completion (burndown).
	Seconds float64
	// E2E are end-to-end latencies.
	E2E Summary
	// Submit are submit latencies: one job (steady) or one batch
	// (burndown).
	Submit Summary
	// Errors counts failed requests and jobs that did not succeed.
	Errors int
	// Inflight is the closed-loop worker count (steady).
	Inflight int
	// Batch is the jobs per submit request (burndown).
	Batch int
	// SubmitPerSec is the enqueue rate: jobs over first submit → last
	// ack (burndown).
	SubmitPerSec float64
	// Size is the payload size in bytes.
	Size int
	// AgentCPU and PluginCPU are the CPU time the local agents and their
	// plugin processes used in the measured time, when CPUKnown (-local on
	// Linux).
	AgentCPU  time.Duration
	PluginCPU time.Duration
	CPUKnown  bool
}

// fields returns the result as ordered key=value pairs, latencies in
// milliseconds.
func (r *Result) fields() [][2]string {
	ms := func(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e6, 'f', 3, 64) }
	f := [][2]string{
		{"mode", r.Mode},
		{"nodes", strconv.Itoa(r.Nodes)},
		{"jobs", strconv.Itoa(r.Jobs)},
		{"jobs_per_s", strconv.FormatFloat(r.JobsPerSec, 'f', 0, 64)},
		{"e2e_p50_ms", ms(r.E2E.P50)},
		{"e2e_p99_ms", ms(r.E2E.P99)},
		{"submit_p50_ms", ms(r.Submit.P50)},
		{"submit_p99_ms", ms(r.Submit.P99)},
		{"e2e_p90_ms", ms(r.E2E.P90)},
		{"e2e_max_ms", ms(r.E2E.Max)},
		{"e2e_mean_ms", ms(r.E2E.Mean)},
		{"submit_max_ms", ms(r.Submit.Max)},
		{"errors", strconv.Itoa(r.Errors)},
	}
	if r.Via != "" && r.Via != ViaAll {
		f = append(f, [2]string{"via", r.Via})
	}
	if r.Inflight > 0 {
		f = append(f, [2]string{"inflight", strconv.Itoa(r.Inflight)})
	}
	if r.Batch > 0 {
		f = append(f, [2]string{"batch", strconv.Itoa(r.Batch)})
	}
	if r.SubmitPerSec > 0 {
		f = append(f, [2]string{"submit_jobs_per_s", strconv.FormatFloat(r.SubmitPerSec, 'f', 0, 64)})
	}
	if r.CPUKnown && r.Seconds > 0 {
		pct := func(d time.Duration) string { return strconv.FormatFloat(100*d.Seconds()/r.Seconds, 'f', 0, 64) }
		f = append(f,
			[2]string{"agent_cpu_pct", pct(r.AgentCPU)},
			[2]string{"plugin_cpu_pct", pct(r.PluginCPU)})
		if r.Jobs > 0 {
			perJob := (r.AgentCPU + r.PluginCPU) / time.Duration(r.Jobs)
			f = append(f, [2]string{"cpu_us_per_job", strconv.FormatInt(perJob.Microseconds(), 10)})
		}
	}
	return append(f,
		[2]string{"size", strconv.Itoa(r.Size)},
		[2]string{"duration_s", strconv.FormatFloat(r.Seconds, 'f', 2, 64)},
	)
}

// Line returns the one-line form: "RESULT mode=… nodes=… jobs=… …".
func (r *Result) Line() string {
	var b strings.Builder
	b.WriteString("RESULT")
	for _, kv := range r.fields() {
		b.WriteString(" " + kv[0] + "=" + kv[1])
	}
	return b.String()
}

// Map returns the result as the key → value map of its RESULT line, with
// numbers as float64 or int, for -json.
func (r *Result) Map() map[string]any {
	out := make(map[string]any)
	for _, kv := range r.fields() {
		if n, err := strconv.Atoi(kv[1]); err == nil {
			out[kv[0]] = n
		} else if f, err := strconv.ParseFloat(kv[1], 64); err == nil {
			out[kv[0]] = f
		} else {
			out[kv[0]] = kv[1]
		}
	}
	return out
}

// ParseResult parses a RESULT line into its key=value fields.
func ParseResult(line string) (map[string]string, error) {
	words := strings.Fields(line)
	if len(words) == 0 || words[0] != "RESULT" {
		return nil, ErrNotResult
	}
	out := make(map[string]string, len(words)-1)
	for _, w := range words[1:] {
		k, v, ok := strings.Cut(w, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%w: field %q is not key=value", ErrNotResult, w)
		}
		out[k] = v
	}
	return out, nil
}
