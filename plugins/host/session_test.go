package host

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// sessionOf returns the named plugin's current process's session (nil for
// a protocol version 1 plugin).
func sessionOf(t *testing.T, m *Manager, name string) *session {
	t.Helper()
	inst, err := m.lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	inst.mu.Lock()
	defer inst.mu.Unlock()
	if inst.proc == nil {
		t.Fatalf("plugin %q has no process", name)
	}
	return inst.proc.sess
}

func TestSessionMultiplexesConcurrentJobs(t *testing.T) {
	const workers, perWorker = 32, 8
	m := startManager(t, Config{
		Builtins: []string{"echo"},
		SelfExe:  selfExe(),
		Plugins:  map[string]PluginConfig{"echo": {Concurrency: workers + 2}},
	})
	before := statusOf(t, m, "echo")
	sess := sessionOf(t, m, "echo")
	if sess == nil {
		t.Fatal("echo speaks protocol version 2 but has no session")
	}

	// A job that is cancelled and one that times out run alongside the
	// others; neither may disturb them.
	cctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cancelled := make(chan error, 1)
	crec := &recorder{}
	go func() {
		_, err := m.Run(cctx, "echo", RunRequest{JobID: "slow", Attempt: 1, Payload: []byte(`{"sleep": "1m", "progress": true}`)}, crec)
		cancelled <- err
	}()
	timedOut := make(chan error, 1)
	go func() {
		_, err := m.Run(context.Background(), "echo", RunRequest{JobID: "late", Attempt: 1,
			Payload: []byte(`{"sleep": "1m"}`), Timeout: 300 * time.Millisecond}, nil)
		timedOut <- err
	}()
	waitFor(t, 5*time.Second, "the slow job to start", func() bool { return len(crec.Progresses()) > 0 })

	var wg sync.WaitGroup
	errs := make(chan error, workers*perWorker)
	for w := range workers {
		wg.Go(func() {
			for j := range perWorker {
				id := fmt.Sprintf("w%d-j%d", w, j)
				rec := &recorder{}
				payload := fmt.Sprintf(`{"echo": %q, "sleep": "10ms", "progress": true}`, id)
				res, err := m.Run(context.Background(), "echo", RunRequest{JobID: id, Attempt: 1, Payload: []byte(payload)}, rec)
				switch {
				case err != nil:
					errs <- fmt.Errorf("%s: %w", id, err)
				case string(res) != id:
					errs <- fmt.Errorf("%s: got result %q", id, res)
				case len(rec.Progresses()) != 5:
					errs <- fmt.Errorf("%s: progress %v, want 5 reports", id, rec.Progresses())
				}
			}
		})
	}
	cancel()
	if err := <-cancelled; !errors.Is(err, ErrCancelled) {
		t.Errorf("cancelled job: %v, want ErrCancelled", err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if err := <-timedOut; !errors.Is(err, ErrTimeout) {
		t.Errorf("timed-out job: %v, want ErrTimeout", err)
	}

	// Every job ran in the one process over the one session.
	after := statusOf(t, m, "echo")
	if after.PID != before.PID || after.Status != StateReady || sessionOf(t, m, "echo") != sess {
		t.Errorf("plugin changed process or session: %+v (was pid %d)", after, before.PID)
	}
	sess.mu.Lock()
	calls, open := sess.lastID, len(sess.calls)
	sess.mu.Unlock()
	if want := uint64(workers*perWorker + 2); calls != want || open != 0 {
		t.Errorf("session carried %d calls (%d still open), want %d (0)", calls, open, want)
	}
	waitFor(t, 5*time.Second, "slots to be released", func() bool { return statusOf(t, m, "echo").Running == 0 })
}

func TestSessionLossFailsEveryCallAndRestarts(t *testing.T) {
	m := startManager(t, Config{Builtins: []string{"echo"}, SelfExe: selfExe()})
	before := statusOf(t, m, "echo")

	// Two jobs wait while a third crashes the process.
	errc := make(chan error, 2)
	for j := range 2 {
		go func() {
			_, err := m.Run(context.Background(), "echo", RunRequest{JobID: fmt.Sprintf("wait%d", j), Attempt: 1, Payload: []byte(`{"sleep": "1m"}`)}, nil)
			errc <- err
		}()
	}
	waitFor(t, 5*time.Second, "the waiting jobs to start", func() bool { return statusOf(t, m, "echo").Running == 2 })
	_, err := m.Run(context.Background(), "echo", RunRequest{JobID: "boom", Attempt: 1, Payload: []byte(`{"crash_attempts": 1}`)}, nil)
	if !errors.Is(err, ErrCrashed) {
		t.Fatalf("crashing job: %v, want ErrCrashed", err)
	}
	for range 2 {
		select {
		case err := <-errc:
			if !errors.Is(err, ErrCrashed) {
				t.Errorf("in-flight job: %v, want ErrCrashed", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("an in-flight job did not fail when its process died")
		}
	}
	after := waitReady(t, m, "echo")
	if after.PID == before.PID {
		t.Errorf("plugin not restarted: pid %d", after.PID)
	}
	if res, err := m.Run(context.Background(), "echo", RunRequest{JobID: "again", Attempt: 1, Payload: []byte(`{"echo": "back"}`)}, nil); err != nil || string(res) != "back" {
		t.Errorf("Run after restart = %q, %v", res, err)
	}
}

func TestProtocolV1PluginStillRuns(t *testing.T) {
	dir := t.TempDir()
	install(t, dir, "testplugin", "v1only")
	m := startManager(t, Config{Dir: dir, Plugins: map[string]PluginConfig{"v1only": {Concurrency: 8}}})
	if s := statusOf(t, m, "v1only"); s.Status != StateReady {
		t.Fatalf("v1-only plugin: %+v", s)
	}
	if sessionOf(t, m, "v1only") != nil {
		t.Fatal("host opened a session with a protocol version 1 plugin")
	}

	// As many callers as slots, each running jobs back to back.
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for j := range 4 {
				id := fmt.Sprintf("v1-%d-%d", w, j)
				rec := &recorder{}
				res, err := m.Run(context.Background(), "v1only", RunRequest{JobID: id, Attempt: 1}, rec)
				if err != nil || string(res) != "ok" {
					t.Errorf("%s: Run = %q, %v", id, res, err)
				}
				if lines := rec.Lines(); len(lines) != 1 || lines[0] != "plugin: running "+id {
					t.Errorf("%s: logs = %q", id, lines)
				}
			}
		})
	}
	wg.Wait()
}
