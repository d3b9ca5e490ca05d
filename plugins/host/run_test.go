package host

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestEchoResults(t *testing.T) {
	m := startManager(t, Config{Builtins: []string{"echo"}, SelfExe: selfExe()})
	ctx := context.Background()

	rec := &recorder{}
	res, err := m.Run(ctx, "echo", RunRequest{JobID: "e1", Attempt: 1, Payload: []byte(`{"echo": "hi", "sleep": "40ms", "progress": true}`)}, rec)
	if err != nil || string(res) != "hi" {
		t.Fatalf("Run = %q, %v", res, err)
	}
	if p := rec.Progresses(); len(p) != 5 || p[0] != 0 || p[4] != 100 {
		t.Errorf("progress = %v, want 0 … 100 in 5 reports", p)
	}

	for _, payload := range []string{"", "{}"} {
		res, err := m.Run(ctx, "echo", RunRequest{JobID: "e2", Attempt: 1, Payload: []byte(payload)}, nil)
		if err != nil || len(res) != 0 {
			t.Errorf("no-op payload %q: Run = %q, %v", payload, res, err)
		}
	}

	failing := []byte(`{"echo": "late", "fail_attempts": 2}`)
	_, err = m.Run(ctx, "echo", RunRequest{JobID: "e3", Attempt: 2, Payload: failing}, nil)
	je := asJobError(t, err)
	if je.NonRetryable || !strings.Contains(je.Message, "failing attempt 2 of 2") {
		t.Errorf("fail_attempts: %+v", je)
	}
	if res, err := m.Run(ctx, "echo", RunRequest{JobID: "e3", Attempt: 3, Payload: failing}, nil); err != nil || string(res) != "late" {
		t.Errorf("attempt 3 = %q, %v", res, err)
	}

	_, err = m.Run(ctx, "echo", RunRequest{JobID: "e4", Attempt: 1, Payload: []byte(`{"ecko": "typo"}`)}, nil)
	if je := asJobError(t, err); !je.NonRetryable || !strings.Contains(je.Message, `unknown field "ecko"`) {
		t.Errorf("bad payload: %+v", je)
	}
}

func TestCrashedPluginIsRestarted(t *testing.T) {
	m := startManager(t, Config{Builtins: []string{"echo"}, SelfExe: selfExe()})
	before := statusOf(t, m, "echo")
	payload := []byte(`{"echo": "survived", "sleep": "50ms", "crash_attempts": 1}`)

	_, err := m.Run(context.Background(), "echo", RunRequest{JobID: "c1", Attempt: 1, Payload: payload}, nil)
	if !errors.Is(err, ErrCrashed) || !strings.Contains(err.Error(), "exited during job c1") {
		t.Fatalf("Run on crash = %v, want ErrCrashed", err)
	}
	if s := statusOf(t, m, "echo"); s.Status != StateRestarting || !strings.Contains(s.Error, "exited unexpectedly") {
		t.Errorf("after crash: %+v, want restarting", s)
	}
	if _, err := m.Run(context.Background(), "echo", RunRequest{JobID: "c1", Attempt: 2, Payload: payload}, nil); !errors.Is(err, ErrNotReady) {
		t.Errorf("Run while restarting = %v, want ErrNotReady", err)
	}
	if _, ok := m.Free()["echo"]; ok {
		t.Errorf("Free() lists a restarting plugin: %v", m.Free())
	}

	after := waitReady(t, m, "echo")
	if after.PID == before.PID || pidAlive(before.PID) {
		t.Errorf("pid %d -> %d; old alive=%v", before.PID, after.PID, pidAlive(before.PID))
	}
	res, err := m.Run(context.Background(), "echo", RunRequest{JobID: "c1", Attempt: 2, Payload: payload}, nil)
	if err != nil || string(res) != "survived" {
		t.Fatalf("Run after restart = %q, %v", res, err)
	}
}

func TestTimeoutCooperativePlugin(t *testing.T) {
	m := startManager(t, Config{Builtins: []string{"echo"}, SelfExe: selfExe()})
	pid := statusOf(t, m, "echo").PID

	start := time.Now()
	_, err := m.Run(context.Background(), "echo", RunRequest{
		JobID: "t1", Attempt: 1, Payload: []byte(`{"sleep": "1m"}`), Timeout: 200 * time.Millisecond,
	}, nil)
	if !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "timed out after 200ms") {
		t.Fatalf("Run = %v, want ErrTimeout", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("timeout took %s", d)
	}
	// The plugin honoured its deadline, so it was not killed.
	if s := statusOf(t, m, "echo"); s.Status != StateReady || s.PID != pid || s.Running != 0 {
		t.Errorf("after cooperative timeout: %+v (pid was %d)", s, pid)
	}
}

func TestHungCallIsKilledAtTimeout(t *testing.T) {
	dir := t.TempDir()
	install(t, dir, "testplugin", "hang")
	m := startManager(t, Config{Dir: dir, KillGrace: 300 * time.Millisecond})
	before := statusOf(t, m, "hang")

	rec := &recorder{}
	start := time.Now()
	_, err := m.Run(context.Background(), "hang", RunRequest{JobID: "h1", Attempt: 1, Timeout: 300 * time.Millisecond}, rec)
	elapsed := time.Since(start)
	if !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "timed out after 300ms") || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("Run = %v, want ErrTimeout saying the plugin was killed", err)
	}
	if elapsed < 600*time.Millisecond || elapsed > 2*time.Second {
		t.Errorf("returned after %s, want timeout+grace (600ms)", elapsed)
	}
	if lines := rec.Lines(); len(lines) != 1 || lines[0] != "plugin: hanging" {
		t.Errorf("logs = %q", lines)
	}
	waitFor(t, 5*time.Second, "hung plugin process to die", func() bool { return !pidAlive(before.PID) })
	after := waitReady(t, m, "hang")
	if after.PID == before.PID {
		t.Errorf("plugin not restarted: pid %d", after.PID)
	}
}

func TestCancelExecKillsProcessGroup(t *testing.T) {
	m := startManager(t, Config{Builtins: []string{"exec"}, SelfExe: selfExe()})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	rec := &recorder{}
	script := `sleep 100 & echo $!; sleep 100 & echo $!; echo $$; wait`
	errc := make(chan error, 1)
	go func() {
		_, err := m.Run(ctx, "exec", RunRequest{JobID: "x1", Attempt: 1,
			Payload: []byte(`{"command": ["sh", "-c", "` + script + `"]}`)}, rec)
		errc <- err
	}()

	waitFor(t, 10*time.Second, "the script's pids", func() bool { return len(rec.Lines()) == 3 })
	var pids []int
	for _, l := range rec.Lines() {
		pid, err := strconv.Atoi(strings.TrimPrefix(l, "stdout: "))
		if err != nil {
			t.Fatalf("unexpected output %q", l)
		}
		if !pidAlive(pid) {
			t.Fatalf("pid %d not running before cancel", pid)
		}
		pids = append(pids, pid)
	}

	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, ErrCancelled) {
			t.Fatalf("Run = %v, want ErrCancelled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	waitFor(t, 5*time.Second, "the job's processes to die", func() bool {
		for _, pid := range pids {
			if pidAlive(pid) {
				return false
			}
		}
		return true
	})
	waitFor(t, 5*time.Second, "slot release", func() bool { return statusOf(t, m, "exec").Running == 0 })
}

func TestPluginExitsWhenHostIsKilled(t *testing.T) {
	host := exec.Command(os.Args[0], "-test.run=^$")
	host.Env = append(os.Environ(), roleEnv+"=watchdog-host", "CORRAL_HOST_TEST_SELFEXE="+selfExe())
	host.Stderr = os.Stderr
	out, err := host.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := host.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = host.Process.Kill()
		_ = host.Wait()
	})

	pid := readPID(t, out)
	if !pidAlive(pid) {
		t.Fatalf("plugin pid %d not running", pid)
	}
	if err := host.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = host.Wait()
	waitFor(t, 5*time.Second, "orphaned plugin to exit", func() bool { return !pidAlive(pid) })
}

func TestCancelledHungCallEndsPlugin(t *testing.T) {
	dir := t.TempDir()
	install(t, dir, "testplugin", "hang")
	m := startManager(t, Config{Dir: dir})
	before := statusOf(t, m, "hang")

	ctx, cancel := context.WithCancel(context.Background())
	rec := &recorder{}
	errc := make(chan error, 1)
	go func() {
		_, err := m.Run(ctx, "hang", RunRequest{JobID: "h2", Attempt: 1}, rec)
		errc <- err
	}()
	waitFor(t, 5*time.Second, "the job to start", func() bool { return len(rec.Lines()) == 1 })
	cancel()
	if err := <-errc; !errors.Is(err, ErrCancelled) {
		t.Fatalf("Run = %v, want ErrCancelled", err)
	}
	// The SDK ends a plugin whose job ignores cancellation; the host restarts it.
	waitFor(t, 10*time.Second, "the stuck plugin to exit", func() bool { return !pidAlive(before.PID) })
	waitFor(t, 10*time.Second, "a restarted plugin", func() bool {
		s := statusOf(t, m, "hang")
		return s.Status == StateReady && s.PID != before.PID
	})
}
