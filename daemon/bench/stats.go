package bench

import (
	"math"
	"slices"
	"sync"
	"time"
)

// Summary describes a set of latencies.
type Summary struct {
	N    int
	Mean time.Duration
	P50  time.Duration
	P90  time.Duration
	P99  time.Duration
	Max  time.Duration
}

// Summarize sorts samples in place and returns their summary; the zero
// Summary for no samples.
func Summarize(samples []time.Duration) Summary {
	if len(samples) == 0 {
		return Summary{}
	}
	slices.Sort(samples)
	var sum time.Duration
	for _, d := range samples {
		sum += d
	}
	return Summary{
		N:    len(samples),
		Mean: sum / time.Duration(len(samples)),
		P50:  Percentile(samples, 50),
		P90:  Percentile(samples, 90),
		P99:  Percentile(samples, 99),
		Max:  samples[len(samples)-1],
	}
}

// Percentile returns the p-th percentile (0 < p <= 100) of sorted samples
// by the nearest-rank method: the smallest sample with at least p% of the
// samples at or below it. It returns 0 for no samples.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	// The small epsilon keeps an exact rank (p=50, n=10 → 5) from being
	// pushed to the next one by float rounding.
	rank := int(math.Ceil(p/100*float64(n) - 1e-9))
	rank = min(max(rank, 1), n)
	return sorted[rank-1]
}

// recorder collects latency samples from many goroutines.
type recorder struct {
	mu      sync.Mutex
	samples []time.Duration
}

// add records one sample.
func (r *recorder) add(d time.Duration) {
	r.mu.Lock()
	r.samples = append(r.samples, d)
	r.mu.Unlock()
}

// summary summarizes the samples recorded so far.
func (r *recorder) summary() Summary {
	r.mu.Lock()
	defer r.mu.Unlock()
	return Summarize(slices.Clone(r.samples))
}
