package httpapi

import (
	"fmt"
	"net/http"
	"sync"
	"time"

	metrics "github.com/hashicorp/go-metrics/compat"
	metricsprom "github.com/hashicorp/go-metrics/compat/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are process-wide: raft, serf and memberlist emit through the
// go-metrics global, so the sink is installed once per process and shared
// by every agent in it (in-process test clusters included).
var (
	metricsOnce    sync.Once
	metricsHandler http.Handler
	metricsErr     error
)

// Metrics installs the Prometheus sink (once per process) and returns the
// handler of GET /v1/metrics.
func Metrics() (http.Handler, error) {
	metricsOnce.Do(func() {
		reg := prometheus.NewRegistry()
		sink, err := metricsprom.NewPrometheusSinkFrom(metricsprom.PrometheusOpts{
			Registerer: reg,
			Expiration: time.Minute,
		})
		if err != nil {
			metricsErr = fmt.Errorf("prometheus sink: %w", err)
			return
		}
		conf := metrics.DefaultConfig("corral")
		conf.EnableHostname = false
		conf.EnableRuntimeMetrics = true
		if _, err := metrics.NewGlobal(conf, sink); err != nil {
			metricsErr = fmt.Errorf("metrics: %w", err)
			return
		}
		metricsHandler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	})
	return metricsHandler, metricsErr
}
