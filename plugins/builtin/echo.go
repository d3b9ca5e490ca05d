package builtin

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/corral-dev/corral/plugins/sdk"
)

// echoCrashExit is the exit code echo uses when asked to crash.
const echoCrashExit = 3

// echoPayload is the echo plugin's payload.
type echoPayload struct {
	// Echo is returned as the result.
	Echo string `json:"echo"`
	// Sleep is how long to sleep before answering (cancellable).
	Sleep string `json:"sleep"`
	// FailAttempts makes attempts up to this number return an error.
	FailAttempts int `json:"fail_attempts"`
	// CrashAttempts makes attempts up to this number kill the plugin process.
	CrashAttempts int `json:"crash_attempts"`
	// Progress reports progress while sleeping.
	Progress bool `json:"progress"`
}

// echoWorker is a plugin for demos, tests and benchmarks.
type echoWorker struct{}

// Info implements sdk.Worker.
func (*echoWorker) Info() sdk.Info {
	return sdk.Info{Name: "echo", Version: Version, Description: "returns its payload's echo text; can sleep, fail or crash on demand"}
}

// Run implements sdk.Worker.
func (*echoWorker) Run(ctx context.Context, job sdk.Job, r sdk.Reporter) ([]byte, error) {
	var p echoPayload
	if err := decodePayload(job.Payload, &p); err != nil {
		return nil, err
	}
	var sleep time.Duration
	if p.Sleep != "" {
		d, err := time.ParseDuration(p.Sleep)
		if err != nil || d < 0 {
			return nil, sdk.NonRetryable(fmt.Errorf("invalid payload: sleep %q is not a duration like \"250ms\"", p.Sleep))
		}
		sleep = d
	}
	if err := echoSleep(ctx, sleep, p.Progress, r); err != nil {
		return nil, err
	}
	if job.Attempt <= p.CrashAttempts {
		r.Logf("crashing on attempt %d of %d as asked", job.Attempt, p.CrashAttempts)
		os.Exit(echoCrashExit)
	}
	if job.Attempt <= p.FailAttempts {
		return nil, fmt.Errorf("failing attempt %d of %d as asked", job.Attempt, p.FailAttempts)
	}
	return []byte(p.Echo), nil
}

// echoSleep sleeps for d unless ctx ends first, reporting progress in four
// steps when asked.
func echoSleep(ctx context.Context, d time.Duration, progress bool, r sdk.Reporter) error {
	steps := 1
	if progress {
		steps = 4
		r.Progress(0, "sleeping")
	}
	if d <= 0 {
		if progress {
			r.Progress(100, "done")
		}
		return nil
	}
	timer := time.NewTimer(d / time.Duration(steps))
	defer timer.Stop()
	for i := 1; i <= steps; i++ {
		select {
		case <-ctx.Done():
			return fmt.Errorf("echo interrupted: %w", ctx.Err())
		case <-timer.C:
		}
		if progress {
			r.Progress(float64(i)*100/float64(steps), "sleeping")
		}
		timer.Reset(d / time.Duration(steps))
	}
	return nil
}
