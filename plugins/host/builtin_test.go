package host

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

func TestExecBuiltin(t *testing.T) {
	m := startManager(t, Config{
		Builtins: []string{"exec"},
		SelfExe:  selfExe(),
		Plugins:  map[string]PluginConfig{"exec": {Config: []byte(`{"allowed_commands": ["sh"]}`)}},
	})
	ctx := context.Background()
	dir := t.TempDir()

	rec := &recorder{}
	res, err := m.Run(ctx, "exec", RunRequest{JobID: "x1", Attempt: 1, Payload: []byte(fmt.Sprintf(
		`{"command": ["sh", "-c", "echo out; echo err >&2; printf 'no newline'; echo \"$GREETING\" in $(pwd) >&2"], "env": {"GREETING": "hello"}, "dir": %q}`, dir))}, rec)
	if err != nil || string(res) != `{"exit_code":0}` {
		t.Fatalf("Run = %q, %v", res, err)
	}
	lines := rec.Lines()
	for _, want := range []string{"stdout: out", "stderr: err", "stdout: no newline", "stderr: hello in " + dir} {
		if !slices.Contains(lines, want) {
			t.Errorf("logs %q lack %q", lines, want)
		}
	}

	_, err = m.Run(ctx, "exec", RunRequest{JobID: "x2", Attempt: 1, Payload: []byte(`{"command": ["sh", "-c", "exit 3"]}`)}, nil)
	if je := asJobError(t, err); je.Message != "exit status 3" || je.NonRetryable {
		t.Errorf("non-zero exit: %+v", je)
	}

	_, err = m.Run(ctx, "exec", RunRequest{JobID: "x3", Attempt: 1, Payload: []byte(`{"command": ["/bin/echo", "hi"]}`)}, nil)
	if je := asJobError(t, err); !je.NonRetryable || !strings.Contains(je.Message, "not in allowed_commands") {
		t.Errorf("disallowed command: %+v", je)
	}
}

func TestInvalidPluginConfigFailsPlugin(t *testing.T) {
	m := startManager(t, Config{
		Builtins: []string{"exec"},
		SelfExe:  selfExe(),
		Plugins:  map[string]PluginConfig{"exec": {Config: []byte(`{"allowed_comands": ["sh"]}`)}},
	})
	s := statusOf(t, m, "exec")
	if s.Status != StateFailed || !strings.Contains(s.Error, `unknown key "allowed_comands"`) {
		t.Errorf("status = %+v", s)
	}
}

func TestHTTPBuiltin(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch r.URL.Path {
		case "/ok":
			fmt.Fprintf(w, "%s %s %s", r.Method, r.Header.Get("X-Test"), body)
		case "/big":
			_, _ = w.Write([]byte(strings.Repeat("x", 100<<10)))
		default:
			http.Error(w, "broken", http.StatusInternalServerError)
		}
	}))
	t.Cleanup(srv.Close)
	m := startManager(t, Config{Builtins: []string{"http"}, SelfExe: selfExe()})
	ctx := context.Background()

	res, err := m.Run(ctx, "http", RunRequest{JobID: "h1", Attempt: 1, Payload: []byte(fmt.Sprintf(
		`{"method": "post", "url": %q, "headers": {"X-Test": "yes"}, "body": "data", "timeout": "5s"}`, srv.URL+"/ok"))}, nil)
	if err != nil || string(res) != "POST yes data" {
		t.Fatalf("Run = %q, %v", res, err)
	}

	res, err = m.Run(ctx, "http", RunRequest{JobID: "h2", Attempt: 1, Payload: []byte(fmt.Sprintf(`{"url": %q}`, srv.URL+"/big"))}, nil)
	if err != nil || len(res) != 64<<10 {
		t.Errorf("big body: len %d, %v", len(res), err)
	}

	_, err = m.Run(ctx, "http", RunRequest{JobID: "h3", Attempt: 1, Payload: []byte(fmt.Sprintf(`{"url": %q}`, srv.URL+"/fail"))}, nil)
	if je := asJobError(t, err); !strings.Contains(je.Message, "500 Internal Server Error") || !strings.Contains(je.Message, "broken") {
		t.Errorf("non-2xx: %+v", je)
	}

	_, err = m.Run(ctx, "http", RunRequest{JobID: "h4", Attempt: 1, Payload: []byte(`{"url": "ftp://example.com"}`)}, nil)
	if je := asJobError(t, err); !je.NonRetryable {
		t.Errorf("bad url: %+v", je)
	}
}
