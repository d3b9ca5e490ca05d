package telemetry

import (
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"unicode"

	metrics "github.com/hashicorp/go-metrics/compat"
	"github.com/prometheus/client_golang/prometheus"
)

// Bridge is a go-metrics sink that keeps what raft, serf, memberlist and
// the applier emit and exposes it as a Prometheus collector with names
// promtool accepts:
//
//   - keys are joined with "_" and turned to snake_case (raft.commitTime
//     becomes corral_raft_commit_time_seconds);
//   - counters end in _total;
//   - timers (go-metrics samples in milliseconds) become histograms in
//     seconds; other samples become unit-less histograms;
//   - keys with a UUID segment (raft's legacy per-peer names, which also
//     exist with a peer_id label) and per-name Serf user event and query
//     keys (serf.events.NAME, serf.queries.NAME) are dropped, so the number
//     of families is bounded;
//   - gauges keep their last value for as long as the process runs: a
//     gauge that still holds (raft state, peers) never disappears.
//
// go-metrics is process-wide, so one Bridge serves every agent of a
// process (in-process test clusters share it).
type Bridge struct {
	mu       sync.Mutex
	families map[string]*bridgeFamily
	// names caches bridgeName by joined key: raft emits on hot paths.
	names map[string]cachedName
	// labels caches labelName (under mu).
	labels map[string]string
}

type cachedName struct {
	name  string
	ok    bool
	timer bool
	// counter and sample are the family names of the key as a counter
	// (name_total) and as a sample (name_seconds for timers), built once.
	counter, sample string
}

// maxCachedNames bounds the name cache (dropped per-event keys are
// unbounded; they are then just recomputed).
const maxCachedNames = 4096

type bridgeKind int

const (
	kindGauge bridgeKind = iota
	kindCounter
	kindHistogram
)

type bridgeFamily struct {
	kind    bridgeKind
	help    string
	labels  []string // label names, fixed at first sight
	buckets []float64
	series  map[string]*bridgeSeries
}

type bridgeSeries struct {
	values []string
	value  float64 // gauge value or counter total
	count  uint64
	sum    float64
	obs    []uint64 // per-bucket (non-cumulative) counts
}

var _ metrics.MetricSink = (*Bridge)(nil)
var _ prometheus.Collector = (*Bridge)(nil)

// NewBridge returns an empty bridge.
func NewBridge() *Bridge {
	return &Bridge{families: map[string]*bridgeFamily{}, names: map[string]cachedName{}, labels: map[string]string{}}
}

// lookup is bridgeName and isTimer through the cache.
func (b *Bridge) lookup(key []string) cachedName {
	var buf [128]byte
	k := joinInto(buf[:0], key, 0)
	b.mu.Lock()
	c, hit := b.names[string(k)] // no allocation for the lookup
	b.mu.Unlock()
	if hit {
		return c
	}
	c.name, c.ok = bridgeName(key)
	c.timer = c.ok && isTimer(key)
	c.counter, c.sample = c.name+"_total", c.name
	if c.timer {
		c.sample += "_seconds"
	}
	b.mu.Lock()
	if len(b.names) < maxCachedNames {
		b.names[string(k)] = c
	}
	b.mu.Unlock()
	return c
}

// joinInto appends parts to dst separated by sep.
func joinInto(dst []byte, parts []string, sep byte) []byte {
	for i, p := range parts {
		if i > 0 {
			dst = append(dst, sep)
		}
		dst = append(dst, p...)
	}
	return dst
}

// name is bridgeName through the cache.
func (b *Bridge) name(key []string) (string, bool) {
	c := b.lookup(key)
	return c.name, c.ok
}

var (
	bridgeOnce sync.Once
	bridge     *Bridge
	bridgeErr  error
)

// GlobalBridge installs a Bridge as the go-metrics global sink, once per
// process, and returns it.
func GlobalBridge() (*Bridge, error) {
	bridgeOnce.Do(func() {
		b := NewBridge()
		conf := metrics.DefaultConfig("corral")
		conf.EnableHostname = false
		conf.EnableHostnameLabel = false
		conf.EnableServiceLabel = false
		conf.EnableRuntimeMetrics = false // the Go collector covers them
		if _, err := metrics.NewGlobal(conf, b); err != nil {
			bridgeErr = err
			return
		}
		bridge = b
	})
	return bridge, bridgeErr
}

// SetGauge implements metrics.MetricSink.
func (b *Bridge) SetGauge(key []string, val float32) { b.SetGaugeWithLabels(key, val, nil) }

// SetGaugeWithLabels implements metrics.MetricSink.
func (b *Bridge) SetGaugeWithLabels(key []string, val float32, labels []metrics.Label) {
	b.SetPrecisionGaugeWithLabels(key, float64(val), labels)
}

// SetPrecisionGauge implements metrics.PrecisionGaugeMetricSink.
func (b *Bridge) SetPrecisionGauge(key []string, val float64) {
	b.SetPrecisionGaugeWithLabels(key, val, nil)
}

// SetPrecisionGaugeWithLabels implements metrics.PrecisionGaugeMetricSink.
func (b *Bridge) SetPrecisionGaugeWithLabels(key []string, val float64, labels []metrics.Label) {
	name, ok := b.name(key)
	if !ok {
		return
	}
	b.record(name, kindGauge, key, labels, func(f *bridgeFamily, s *bridgeSeries) { s.value = val })
}

// EmitKey implements metrics.MetricSink; key/value events are not metrics
// and are dropped.
func (b *Bridge) EmitKey(key []string, val float32) {}

// IncrCounter implements metrics.MetricSink.
func (b *Bridge) IncrCounter(key []string, val float32) { b.IncrCounterWithLabels(key, val, nil) }

// IncrCounterWithLabels implements metrics.MetricSink.
func (b *Bridge) IncrCounterWithLabels(key []string, val float32, labels []metrics.Label) {
	c := b.lookup(key)
	if !c.ok {
		return
	}
	b.record(c.counter, kindCounter, key, labels, func(f *bridgeFamily, s *bridgeSeries) { s.value += float64(val) })
}

// AddSample implements metrics.MetricSink.
func (b *Bridge) AddSample(key []string, val float32) { b.AddSampleWithLabels(key, val, nil) }

// AddSampleWithLabels implements metrics.MetricSink.
func (b *Bridge) AddSampleWithLabels(key []string, val float32, labels []metrics.Label) {
	c := b.lookup(key)
	if !c.ok {
		return
	}
	v := float64(val)
	if c.timer {
		v /= 1000 // go-metrics timers are in milliseconds
	}
	b.record(c.sample, kindHistogram, key, labels, func(f *bridgeFamily, s *bridgeSeries) {
		s.count++
		s.sum += v
		i := sort.SearchFloat64s(f.buckets, v)
		if i < len(s.obs) {
			s.obs[i]++
		}
	})
}

func (b *Bridge) record(name string, kind bridgeKind, key []string, labels []metrics.Label, update func(*bridgeFamily, *bridgeSeries)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	f := b.families[name]
	if f == nil {
		f = &bridgeFamily{kind: kind, series: map[string]*bridgeSeries{},
			help: "go-metrics " + strings.Join(key, ".") + " (bridged)"}
		for _, l := range labels {
			if ln := b.labelName(l.Name); ln != "" && !slices.Contains(f.labels, ln) {
				f.labels = append(f.labels, ln)
			}
		}
		if kind == kindHistogram {
			f.buckets = prometheus.DefBuckets
			if !strings.HasSuffix(name, "_seconds") {
				f.buckets = prometheus.ExponentialBuckets(1, 4, 10)
			}
		}
		b.families[name] = f
	}
	if f.kind != kind {
		return // one name, one type
	}
	// The series key is the label values in the family's order, joined
	// by 0xff; built on the stack, it costs no allocation when the series
	// exists (raft labels its hot timers with the peer).
	var vbuf [4]string
	values := vbuf[:0]
	if len(f.labels) > len(vbuf) {
		values = make([]string, 0, len(f.labels))
	}
	values = values[:len(f.labels)]
	for _, l := range labels {
		ln := b.labelName(l.Name)
		for i, n := range f.labels {
			if n == ln {
				values[i] = l.Value
			}
		}
	}
	var kbuf [128]byte
	sk := joinInto(kbuf[:0], values, 0xff)
	s := f.series[string(sk)]
	if s == nil {
		s = &bridgeSeries{values: slices.Clone(values)}
		if kind == kindHistogram {
			s.obs = make([]uint64, len(f.buckets)+1)
		}
		f.series[string(sk)] = s
	}
	update(f, s)
}

// Describe implements prometheus.Collector: the bridge is an unchecked
// collector (its families appear as the libraries emit them).
func (b *Bridge) Describe(chan<- *prometheus.Desc) {}

// Collect implements prometheus.Collector.
func (b *Bridge) Collect(ch chan<- prometheus.Metric) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for name, f := range b.families {
		desc := prometheus.NewDesc(name, f.help, f.labels, nil)
		for _, s := range f.series {
			switch f.kind {
			case kindGauge:
				ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, s.value, s.values...)
			case kindCounter:
				ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, s.value, s.values...)
			case kindHistogram:
				bk := make(map[float64]uint64, len(f.buckets))
				var cum uint64
				for i, ub := range f.buckets {
					cum += s.obs[i]
					bk[ub] = cum
				}
				ch <- prometheus.MustNewConstHistogram(desc, s.count, s.sum, bk, s.values...)
			}
		}
	}
}

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// bridgeName turns a go-metrics key into a Prometheus name, or reports
// false for keys that would make unbounded families.
func bridgeName(key []string) (string, bool) {
	if len(key) >= 4 && key[1] == "serf" && (key[2] == "events" || key[2] == "queries") {
		return "", false // serf.events.NAME: one family per user event name
	}
	parts := make([]string, 0, len(key))
	for _, k := range key {
		if uuidRE.MatchString(k) {
			return "", false
		}
		if k = snake(k); k != "" {
			parts = append(parts, k)
		}
	}
	name := strings.Join(parts, "_")
	name = strings.TrimSuffix(name, "_ms")
	return name, name != ""
}

// isTimer tells samples measured in milliseconds (MeasureSince and the
// few explicit *Time / *-ms samples) from counts and sizes.
func isTimer(key []string) bool {
	last := strings.ToLower(key[len(key)-1])
	if strings.HasSuffix(last, "time") || strings.HasSuffix(last, "-ms") || last == "lastcontact" {
		return true
	}
	for _, k := range key {
		k = strings.ToLower(k)
		if k == "queue" {
			return false // serf.queue.*, memberlist.queue.*: lengths
		}
		for _, w := range []string{"size", "batch", "num", "broadcasts", "msgs", "capacity", "commands", "bytes"} {
			if strings.Contains(k, w) {
				return false
			}
		}
	}
	return true
}

// snake converts camelCase and dashed words to snake_case.
func snake(s string) string {
	var b strings.Builder
	rs := []rune(s)
	for i, r := range rs {
		switch {
		case unicode.IsUpper(r):
			if i > 0 && (unicode.IsLower(rs[i-1]) || unicode.IsDigit(rs[i-1]) ||
				(i+1 < len(rs) && unicode.IsLower(rs[i+1]) && unicode.IsUpper(rs[i-1]))) {
				b.WriteByte('_')
			}
			b.WriteRune(unicode.ToLower(r))
		case unicode.IsLower(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	return strings.Trim(strings.ReplaceAll(b.String(), "__", "_"), "_")
}

// labelName is the package's labelName through the cache; b.mu is held.
func (b *Bridge) labelName(s string) string {
	if n, ok := b.labels[s]; ok {
		return n
	}
	n := labelName(s)
	if len(b.labels) < maxCachedNames {
		b.labels[s] = n
	}
	return n
}

// labelName turns a go-metrics label name into a Prometheus one, or "" when
// it cannot be one.
func labelName(s string) string {
	n := snake(s)
	if n == "" || unicode.IsDigit(rune(n[0])) {
		return ""
	}
	return n
}
