package command

import (
	"runtime/debug"
	"syscall"
	"testing"
)

// TestAgentSetsGCTarget: an agent started without GOGC in its environment
// runs the collector at agentGCPercent; with GOGC set, the environment's
// value stays.
func TestAgentSetsGCTarget(t *testing.T) {
	prev := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(prev) })

	fa := newFakeAgent()
	r := startAgentCmd(t, fa, "-dev")
	got := debug.SetGCPercent(100)
	r.signals <- syscall.SIGTERM
	r.exit(t)
	if got != agentGCPercent {
		t.Errorf("GC percent of a started agent without GOGC = %d, want %d", got, agentGCPercent)
	}

	debug.SetGCPercent(50) // as the runtime does for GOGC=50
	env := func(k string) string {
		if k == "GOGC" {
			return "50"
		}
		return ""
	}
	if n := tuneGC(env); n != 50 {
		t.Errorf("tuneGC with GOGC=50 reports %d, want 50", n)
	}
	if got := debug.SetGCPercent(100); got != 50 {
		t.Errorf("GC percent with GOGC=50 set = %d, want it left at 50", got)
	}
}
