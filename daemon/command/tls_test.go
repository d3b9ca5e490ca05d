package command

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTLSCommandsAndHTTPS: `tls ca create` and `tls cert create -server`
// make files an HTTPS agent can serve with; the CLI reaches it with
// -ca-file or CORRAL_CACERT and refuses it without the CA.
func TestTLSCommandsAndHTTPS(t *testing.T) {
	dir := t.TempDir()
	expect(t, runCLI(t, nil, "", false, "tls", "ca", "create", "-dir", dir), 0, []string{"corral-agent-ca.pem", "corral-agent-ca-key.pem"}, nil)
	ca, key := filepath.Join(dir, "corral-agent-ca.pem"), filepath.Join(dir, "corral-agent-ca-key.pem")
	expect(t, runCLI(t, nil, "", false, "tls", "cert", "create", "-server", "-ca", ca, "-key", key, "-dir", dir), 0, []string{"global-server-corral-0.pem"}, nil)
	expect(t, runCLI(t, nil, "", false, "tls", "cert", "create", "-client", "-ca", ca, "-key", key, "-dir", dir), 0, []string{"global-client-corral-0.pem"}, nil)
	expect(t, runCLI(t, nil, "", false, "tls", "cert", "create", "-ca", ca, "-key", key, "-dir", dir), 1, nil, []string{"exactly one of -server and -client"})
	expect(t, runCLI(t, nil, "", false, "tls", "ca", "create", "-dir", dir), 1, nil, []string{"already exists"})

	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, "global-server-corral-0.pem"), filepath.Join(dir, "global-server-corral-0-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeFake(w, 200, map[string]any{"queues": []any{}, "index": 1})
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	srv.StartTLS()
	defer srv.Close()
	addr := "https://" + strings.TrimPrefix(srv.URL, "https://")

	expect(t, runCLI(t, map[string]string{EnvAddress: addr}, "", false, "queue", "list", "-ca-file", ca), 0, []string{"No queues"}, nil)
	expect(t, runCLI(t, map[string]string{EnvAddress: addr, EnvCACert: ca}, "", false, "queue", "list"), 0, []string{"No queues"}, nil)
	r := runCLI(t, map[string]string{EnvAddress: addr}, "", false, "queue", "list")
	if r.code != 1 || !strings.Contains(r.stderr, "certificate") {
		t.Fatalf("without the CA: exit %d %q, want a certificate error", r.code, r.stderr)
	}
	// A client certificate loads; a missing one is one clear line.
	expect(t, runCLI(t, map[string]string{EnvAddress: addr}, "", false, "queue", "list", "-ca-file", ca,
		"-client-cert", filepath.Join(dir, "global-client-corral-0.pem"), "-client-key", filepath.Join(dir, "global-client-corral-0-key.pem")), 0, []string{"No queues"}, nil)
	expect(t, runCLI(t, map[string]string{EnvAddress: addr}, "", false, "queue", "list", "-client-cert", "/nope.pem", "-client-key", "/nope-key.pem"), 1, nil, []string{"client certificate"})
	if _, err := os.Stat(filepath.Join(dir, "global-server-corral-0-key.pem")); err != nil {
		t.Fatal(err)
	}
}
