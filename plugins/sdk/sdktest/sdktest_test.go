package sdktest_test

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/corral-dev/corral/plugins/sdk"
	"github.com/corral-dev/corral/plugins/sdk/sdktest"
)

// waiter logs, reports progress and waits for its context; payload "bad"
// fails without retries.
type waiter struct{}

func (waiter) Info() sdk.Info { return sdk.Info{Name: "waiter", Version: "0.1.0"} }

func (waiter) Run(ctx context.Context, job sdk.Job, r sdk.Reporter) ([]byte, error) {
	if string(job.Payload) == "bad" {
		return nil, sdk.NonRetryable(errors.New("bad payload"))
	}
	r.Logf("job %s attempt %d waiting", job.ID, job.Attempt)
	r.Progress(10, "waiting")
	<-ctx.Done()
	return nil, ctx.Err()
}

func TestServeCancelTimeoutNonRetryable(t *testing.T) {
	for _, v := range []int{1, 2} {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			p := sdktest.Serve(t, waiter{}, sdktest.Options{APIVersions: []int{v}})

			out := p.Run(context.Background(), sdktest.Request{Payload: []byte("bad")})
			var je *sdktest.JobError
			if !errors.As(out.Err, &je) || !je.NonRetryable || je.Message != "bad payload" {
				t.Fatalf("non-retryable: %+v", out)
			}

			out = p.Run(context.Background(), sdktest.Request{ID: "t1", Attempt: 3, Timeout: 100 * time.Millisecond})
			if !errors.As(out.Err, &je) || je.NonRetryable || !strings.Contains(je.Message, "deadline exceeded") || out.Cancelled {
				t.Fatalf("timeout: %+v", out)
			}
			if lines := out.Lines(); len(lines) != 1 || lines[0] != "job t1 attempt 3 waiting" {
				t.Errorf("log = %q", lines)
			}

			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan sdktest.Outcome, 1)
			go func() { done <- p.Run(ctx, sdktest.Request{}) }()
			// The job waits for its context whenever the cancel lands
			// (before or after it started), so the delay needs no tuning.
			time.AfterFunc(100*time.Millisecond, cancel)
			out = <-done
			if !out.Cancelled || out.Err == nil {
				t.Fatalf("cancelled job: %+v", out)
			}
		})
	}
}

// TestExecPython runs the Python SDK's example plugin through the harness:
// the harness works for plugins in any language.
func TestExecPython(t *testing.T) {
	const python = "/usr/bin/python3"
	if out, err := exec.Command(python, "-c", "import grpc, google.protobuf, cryptography").CombinedOutput(); err != nil {
		t.Skipf("python3-grpcio missing: %s cannot import grpc, google.protobuf and cryptography (apt-get install python3-grpcio python3-protobuf python3-cryptography): %v: %s",
			python, err, strings.TrimSpace(string(out)))
	}
	sdkDir, err := filepath.Abs("../python")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("PYTHONPATH", sdkDir) // the plugin inherits the environment, as from the agent
	p := sdktest.Exec(t, python, []string{filepath.Join(sdkDir, "examples", "wordcount.py")})
	if info := p.Info(); info.Name != "wordcount" || p.APIVersion() != 2 {
		t.Fatalf("Info = %+v over version %d", info, p.APIVersion())
	}
	out := p.Run(context.Background(), sdktest.Request{Payload: []byte("to be or not to be")})
	if out.Err != nil || string(out.Result) != `{"to": 2, "be": 2, "or": 1, "not": 1}` || len(out.Progress) != 6 {
		t.Fatalf("wordcount: %+v", out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	out = p.Run(ctx, sdktest.Request{Payload: []byte(`{"text": "a b c", "delay": 10}`)})
	var je *sdktest.JobError
	if !out.Cancelled || !errors.As(out.Err, &je) || !strings.Contains(je.Message, "cancelled after 0 of 3 words") {
		t.Fatalf("cancelled wordcount: %+v", out)
	}
	if p.Exited() {
		t.Fatal("the plugin exited after a cancelled job")
	}
}
