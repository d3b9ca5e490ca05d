package main

import (
	"fmt"
	"sort"
	"strings"

	"github.com/corral-dev/corral/daemon/api"
)

// summary describes how hard the run pushed: operation outcomes, attempts
// per job, executions whose report lost to a newer lease, final states.
func summary(ops []Op, effects []effect, jobs []api.Job) string {
	outcomes := map[string]int{}
	for _, o := range ops {
		if o.Type != opInvoke {
			outcomes[o.F+":"+string(o.Type)]++
		}
	}
	final := map[string]api.Job{}
	states := map[string]int{}
	retried := 0
	for _, j := range jobs {
		final[j.ID] = j
		states[j.State]++
		if j.Attempt > 1 {
			retried++
		}
	}
	superseded := 0
	for _, e := range effects {
		if j, ok := final[e.Job]; ok && e.Outcome == "succeeded" && (j.State != "succeeded" || e.Attempt != j.Attempt) {
			superseded++
		}
	}
	return fmt.Sprintf("ops %s; final states %s; %d jobs ran more than one attempt; %d successful executions superseded by a newer lease",
		counts(outcomes), counts(states), retried, superseded)
}

func counts(m map[string]int) string {
	var parts []string
	for k, v := range m {
		parts = append(parts, fmt.Sprintf("%s=%d", k, v))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}
