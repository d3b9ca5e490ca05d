package telemetry

import (
	"strings"
	"testing"

	metrics "github.com/hashicorp/go-metrics/compat"
	"github.com/prometheus/client_golang/prometheus"
)

// TestBridgeNames: go-metrics keys become promtool-clean, bounded names;
// per-peer UUID keys and per-name Serf event keys are dropped; gauges keep
// their value.
func TestBridgeNames(t *testing.T) {
	b := NewBridge()
	b.IncrCounter([]string{"corral", "raft", "apply"}, 1)
	b.AddSample([]string{"corral", "raft", "commitTime"}, 250) // ms
	b.AddSample([]string{"corral", "raft", "fsm", "enqueue"}, 2)
	b.AddSample([]string{"corral", "raft", "boltdb", "logsPerBatch"}, 3)
	b.SetGauge([]string{"corral", "raft", "state", "leader"}, 1)
	b.AddSampleWithLabels([]string{"corral", "raft", "replication", "appendEntries", "rpc"}, 1,
		[]metrics.Label{{Name: "peer_id", Value: "7505e8b8-49ed-b36d-6d5f-d0d77cac2f8e"}})
	b.AddSample([]string{"corral", "raft", "replication", "appendEntries", "rpc", "7505e8b8-49ed-b36d-6d5f-d0d77cac2f8e"}, 1)
	for i := 0; i < 50; i++ {
		b.IncrCounter([]string{"corral", "serf", "events", "deploy-" + string(rune('a'+i%26))}, 1)
	}
	b.IncrCounter([]string{"corral", "serf", "events"}, 50)
	b.AddSampleWithLabels([]string{"corral", "serf", "coordinate", "adjustment-ms"}, 3, nil)

	reg := prometheus.NewRegistry()
	reg.MustRegister(b)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, mf := range mfs {
		got[mf.GetName()] = mf.GetType().String()
	}
	want := map[string]string{
		"corral_raft_apply_total":                            "COUNTER",
		"corral_raft_commit_time_seconds":                    "HISTOGRAM",
		"corral_raft_fsm_enqueue_seconds":                    "HISTOGRAM",
		"corral_raft_boltdb_logs_per_batch":                  "HISTOGRAM",
		"corral_raft_state_leader":                           "GAUGE",
		"corral_raft_replication_append_entries_rpc_seconds": "HISTOGRAM",
		"corral_serf_events_total":                           "COUNTER",
		"corral_serf_coordinate_adjustment_seconds":          "HISTOGRAM",
	}
	for name, typ := range want {
		if got[name] != typ {
			t.Errorf("family %s: type %q, want %q", name, got[name], typ)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d families, want %d: %v", len(got), len(want), got)
	}
	for name := range got {
		if strings.Contains(name, "7505e8b8") || strings.Contains(name, "deploy") {
			t.Errorf("unbounded family %s", name)
		}
	}
	for _, mf := range mfs {
		switch mf.GetName() {
		case "corral_raft_commit_time_seconds":
			if s := mf.GetMetric()[0].GetHistogram().GetSampleSum(); s != 0.25 {
				t.Errorf("commit time sum %v s, want 0.25 (250 ms)", s)
			}
		case "corral_raft_state_leader":
			if v := mf.GetMetric()[0].GetGauge().GetValue(); v != 1 {
				t.Errorf("leader gauge %v, want 1", v)
			}
		}
	}
}

// TestBridgeLabeledSeries: samples with the same label values land in one
// series and others in their own, and recording into an existing series
// allocates nothing (raft records a labelled timer per AppendEntries).
func TestBridgeLabeledSeries(t *testing.T) {
	b := NewBridge()
	key := []string{"corral", "raft", "replication", "appendEntries", "rpc"}
	peer := func(id string) []metrics.Label { return []metrics.Label{{Name: "peer_id", Value: id}} }
	b.AddSampleWithLabels(key, 1, peer("a"))
	b.AddSampleWithLabels(key, 3, peer("a"))
	b.AddSampleWithLabels(key, 5, peer("b"))

	reg := prometheus.NewRegistry()
	reg.MustRegister(b)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sums := map[string]float64{}
	counts := map[string]uint64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			lp := m.GetLabel()
			if len(lp) != 1 || lp[0].GetName() != "peer_id" {
				t.Fatalf("%s: labels %v, want one peer_id", mf.GetName(), lp)
			}
			sums[lp[0].GetValue()] = m.GetHistogram().GetSampleSum()
			counts[lp[0].GetValue()] = m.GetHistogram().GetSampleCount()
		}
	}
	if counts["a"] != 2 || sums["a"] != 0.004 || counts["b"] != 1 || sums["b"] != 0.005 {
		t.Errorf("series: counts %v sums %v, want a: 2 samples 0.004 s, b: 1 sample 0.005 s", counts, sums)
	}

	labels := peer("a")
	if n := testing.AllocsPerRun(100, func() { b.AddSampleWithLabels(key, 1, labels) }); n != 0 {
		t.Errorf("a sample into an existing labelled series allocates %v times, want 0", n)
	}
}
