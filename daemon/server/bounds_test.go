package server

import (
	"strings"
	"testing"

	"github.com/corral-dev/corral/queue"
)

// TestBoundReport checks the leader's own bounds on what a worker reports
// over the node plane: a result over the limit fails the attempt and never
// reaches raft, a long error is cut, a report within bounds is untouched.
func TestBoundReport(t *testing.T) {
	big := queue.Report{ID: "j", Outcome: queue.OutcomeSucceeded, Result: make([]byte, 65)}
	boundReport(&big, 64)
	if big.Outcome != queue.OutcomeFailed || big.Result != nil || !strings.Contains(big.Error, "max_result_bytes") {
		t.Fatalf("oversized result: %+v, want failed without result, naming limits.max_result_bytes", big)
	}
	long := queue.Report{ID: "j", Outcome: queue.OutcomeFailed, Error: strings.Repeat("e", 1<<20)}
	boundReport(&long, 64)
	if len(long.Error) > maxReportError+3 {
		t.Fatalf("error of %d bytes kept, want at most %d", len(long.Error), maxReportError+3)
	}
	ok := queue.Report{ID: "j", Outcome: queue.OutcomeSucceeded, Result: make([]byte, 64), Error: ""}
	boundReport(&ok, 64)
	if ok.Outcome != queue.OutcomeSucceeded || len(ok.Result) != 64 {
		t.Fatalf("report within bounds changed: %+v", ok)
	}
}
