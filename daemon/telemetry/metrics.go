// Package telemetry is Corral's Prometheus metrics: the job families
// (queue depth from the FSM, job outcome counters and latency histograms
// observed as the FSM applies them), this node's plugin slots, leadership
// and HTTP status counts, the go-metrics bridge for raft, serf and
// memberlist, and the Go and process collectors. Every family and its
// labels are listed in the README's Metrics section; labels are bounded
// (queue, state, plugin, method, code): never job IDs.
package telemetry

import (
	"net/http"
	"strconv"

	"github.com/corral-dev/corral/queue"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Plugin is one plugin's slots on this node, read at scrape time.
type Plugin struct {
	Name        string
	Ready       bool
	Concurrency int
	Running     int
	// Restarts counts the plugin's restarts since the agent started.
	Restarts int
}

// Config says where the scrape-time figures come from.
type Config struct {
	// Node is this node's name (corral_build_info's node label).
	Node string
	// Version is the agent's version.
	Version string
	// Queues returns the FSM's queues with their counts per state.
	Queues func() []queue.QueueInfo
	// Plugins returns this node's plugins.
	Plugins func() []Plugin
	// IsLeader reports whether this node leads raft.
	IsLeader func() bool
	// Bridge, when set, is added to the registry (raft, serf, memberlist).
	Bridge prometheus.Collector
}

// Metrics is one agent's registry.
type Metrics struct {
	cfg Config
	reg *prometheus.Registry

	submitted *prometheus.CounterVec
	succeeded *prometheus.CounterVec
	failed    *prometheus.CounterVec
	cancelled *prometheus.CounterVec
	retried   *prometheus.CounterVec
	lost      *prometheus.CounterVec
	purged    *prometheus.CounterVec
	wait      *prometheus.HistogramVec
	endToEnd  *prometheus.HistogramVec
	requests  *prometheus.CounterVec
}

// latencyBuckets span a few milliseconds to a day: queue wait and job
// duration range from instant no-ops to long batch jobs.
var latencyBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 24 * 3600}

// New builds the registry. Nothing is collected until a scrape.
func New(cfg Config) (*Metrics, error) {
	m := &Metrics{cfg: cfg, reg: prometheus.NewRegistry()}
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	}
	m.submitted = counter("corral_jobs_submitted_total", "Jobs created by submits, as applied by this node's replica of the FSM (the same on every node).", "queue")
	m.succeeded = counter("corral_jobs_succeeded_total", "Jobs that ended succeeded (cluster-wide, from the FSM).", "queue", "plugin")
	m.failed = counter("corral_jobs_failed_total", "Jobs that entered the failed (dead) set: attempts exhausted or a non-retryable error (cluster-wide, from the FSM).", "queue", "plugin")
	m.cancelled = counter("corral_jobs_cancelled_total", "Jobs that ended cancelled (cluster-wide, from the FSM).", "queue")
	m.retried = counter("corral_jobs_retried_total", "Jobs put back to run again: after a failed or lost attempt with attempts left, or by a manual retry (cluster-wide, from the FSM).", "queue", "plugin")
	m.lost = counter("corral_jobs_lost_total", "Attempts lost because their lease expired or their node failed (cluster-wide, from the FSM).", "queue", "plugin")
	m.purged = counter("corral_jobs_purged_total", "Terminal jobs removed after their queue's retention (cluster-wide, from the FSM).", "queue")
	m.wait = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "corral_job_queue_wait_seconds", Buckets: latencyBuckets,
		Help: "Time from a job being due (created, run_at reached or previous attempt ended) to an attempt starting.",
	}, []string{"queue"})
	m.endToEnd = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "corral_job_end_to_end_seconds", Buckets: latencyBuckets,
		Help: "Time from a job's submit to its terminal state, by terminal state.",
	}, []string{"queue", "state"})
	m.requests = counter("corral_http_requests_total", "HTTP API requests served by this node, by method and status code.", "method", "code")

	cs := []prometheus.Collector{
		m.submitted, m.succeeded, m.failed, m.cancelled, m.retried, m.lost, m.purged,
		m.wait, m.endToEnd, m.requests,
		scrapeCollector{m},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	}
	if cfg.Bridge != nil {
		cs = append(cs, cfg.Bridge)
	}
	for _, c := range cs {
		if err := m.reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Registry returns the registry (tests gather from it).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Observe counts one FSM transition; it is the store's queue.Observer.
func (m *Metrics) Observe(t queue.Transition) {
	switch {
	case t.From == queue.StateInvalid && t.To != queue.StateInvalid:
		m.submitted.WithLabelValues(t.Queue).Inc()
	case t.To == queue.StateInvalid:
		m.purged.WithLabelValues(t.Queue).Inc()
		return
	}
	if t.Outcome == queue.OutcomeLost {
		m.lost.WithLabelValues(t.Queue, t.Plugin).Inc()
	}
	switch t.To {
	case queue.StateRunning:
		m.wait.WithLabelValues(t.Queue).Observe(t.Wait.Seconds())
	case queue.StateSucceeded:
		m.succeeded.WithLabelValues(t.Queue, t.Plugin).Inc()
	case queue.StateFailed:
		m.failed.WithLabelValues(t.Queue, t.Plugin).Inc()
	case queue.StateCancelled:
		m.cancelled.WithLabelValues(t.Queue).Inc()
	case queue.StateScheduled, queue.StateQueued, queue.StateBlocked:
		if t.From == queue.StateRunning || t.From.Terminal() {
			m.retried.WithLabelValues(t.Queue, t.Plugin).Inc()
		}
	}
	if t.To.Terminal() {
		m.endToEnd.WithLabelValues(t.Queue, t.To.String()).Observe(t.Age.Seconds())
	}
}

// Instrument counts every request of next by method and status code.
func (m *Metrics) Instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(sw, r)
		m.requests.WithLabelValues(method(r.Method), strconv.Itoa(sw.code)).Inc()
	})
}

// method bounds the method label to the standard methods.
func method(s string) string {
	switch s {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return s
	}
	return "other"
}

// statusWriter remembers the status code; it keeps http.Flusher working
// for streamed responses (logs, server-sent events).
type statusWriter struct {
	http.ResponseWriter
	code        int
	wroteHeader bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wroteHeader {
		w.code, w.wroteHeader = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wroteHeader = true
	return w.ResponseWriter.Write(b)
}

// Flush implements http.Flusher.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// scrapeCollector computes the figures that are read at scrape time: queue
// depth from the FSM, plugin slots, leadership.
type scrapeCollector struct{ m *Metrics }

var (
	descDepth    = prometheus.NewDesc("corral_queue_jobs", "Jobs per queue and state in the FSM (the same on every node at the same index).", []string{"queue", "state"}, nil)
	descPaused   = prometheus.NewDesc("corral_queue_paused", "1 when the queue is paused.", []string{"queue"}, nil)
	descRunning  = prometheus.NewDesc("corral_plugin_running_jobs", "Jobs running in the plugin on this node.", []string{"plugin"}, nil)
	descFree     = prometheus.NewDesc("corral_plugin_free_slots", "Free job slots of the plugin on this node (0 while it is not ready).", []string{"plugin"}, nil)
	descReady    = prometheus.NewDesc("corral_plugin_ready", "1 when the plugin is ready on this node.", []string{"plugin"}, nil)
	descRestarts = prometheus.NewDesc("corral_plugin_restarts_total", "Restarts of the plugin's process on this node since the agent started.", []string{"plugin"}, nil)
	descLeader   = prometheus.NewDesc("corral_is_leader", "1 when this node is the raft leader.", nil, nil)
	descInfo     = prometheus.NewDesc("corral_build_info", "Always 1; labels carry the agent's version and node name.", []string{"version", "node"}, nil)
)

func (c scrapeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descDepth, descPaused, descRunning, descFree, descReady, descRestarts, descLeader, descInfo} {
		ch <- d
	}
}

func (c scrapeCollector) Collect(ch chan<- prometheus.Metric) {
	cfg := c.m.cfg
	if cfg.Queues != nil {
		for _, q := range cfg.Queues() {
			for st := queue.StateScheduled; st <= queue.StateBlocked; st++ {
				ch <- prometheus.MustNewConstMetric(descDepth, prometheus.GaugeValue, float64(q.Counts[st]), q.Name, st.String())
			}
			ch <- prometheus.MustNewConstMetric(descPaused, prometheus.GaugeValue, b2f(q.Config.Paused), q.Name)
		}
	}
	if cfg.Plugins != nil {
		for _, p := range cfg.Plugins() {
			free := 0
			if p.Ready {
				free = max(p.Concurrency-p.Running, 0)
			}
			ch <- prometheus.MustNewConstMetric(descRunning, prometheus.GaugeValue, float64(p.Running), p.Name)
			ch <- prometheus.MustNewConstMetric(descFree, prometheus.GaugeValue, float64(free), p.Name)
			ch <- prometheus.MustNewConstMetric(descReady, prometheus.GaugeValue, b2f(p.Ready), p.Name)
			ch <- prometheus.MustNewConstMetric(descRestarts, prometheus.CounterValue, float64(p.Restarts), p.Name)
		}
	}
	if cfg.IsLeader != nil {
		ch <- prometheus.MustNewConstMetric(descLeader, prometheus.GaugeValue, b2f(cfg.IsLeader()))
	}
	ch <- prometheus.MustNewConstMetric(descInfo, prometheus.GaugeValue, 1, cfg.Version, cfg.Node)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
