package rpc

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// testCA is a certificate authority made in the test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t testing.TB) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "Corral Test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// issue makes a node certificate (server and client use) for name.
func (ca *testCA) issue(t testing.TB, name string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der, ca.cert.Raw}, PrivateKey: key}
}

const testServerName = "server.test.corral"

// tlsConfig returns cfg with mutual TLS: the node's certificate on both
// sides, the CA's pool for both verifications.
func tlsConfig(cfg Config, ca *testCA, cert tls.Certificate) Config {
	cfg.TLS = &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientCAs:    ca.pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS12,
	}
	cfg.DialTLS = &tls.Config{
		Certificates: []tls.Certificate{cert},
		RootCAs:      ca.pool,
		ServerName:   testServerName,
		MinVersion:   tls.VersionTLS12,
	}
	return cfg
}

// TestTLS: with Config.TLS every connection on the port is mutual TLS
// before the protocol byte; RPC and raft work with a certificate of the
// cluster CA and are refused without one.
func TestTLS(t *testing.T) {
	var logs logBuffer
	ca := newTestCA(t)
	cert := ca.issue(t, testServerName)
	cfg := tlsConfig(testConfig(t, &logs), ca, cert)
	n := mustNode(t, cfg, "127.0.0.1:0")
	ctx := ctxT(t, 30*time.Second)

	p := mustPool(t, cfg)
	var resp echoResp
	if err := p.Call(ctx, n.addr, methodEcho, &echoReq{Payload: []byte{1, 2, 3}}, &resp); err != nil {
		t.Fatalf("mutual TLS call: %v", err)
	}
	s, err := p.Open(ctx, n.addr, methodChat)
	if err != nil {
		t.Fatal(err)
	}
	chat(t, s, 100)
	s.Close()

	// Raft over TLS through the same port.
	rc, err := n.mux.RaftLayer().Dial(raft.ServerAddress(n.addr), 5*time.Second)
	if err != nil {
		t.Fatalf("raft dial over TLS: %v", err)
	}
	defer rc.Close()
	if _, ok := rc.(*tls.Conn); !ok {
		t.Fatalf("raft dial returned %T, want *tls.Conn", rc)
	}
	ac, err := n.mux.RaftLayer().Accept()
	if err != nil {
		t.Fatal(err)
	}
	go rc.Write([]byte("ping"))
	buf := make([]byte, 4)
	ac.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := ac.Read(buf); err != nil || string(buf) != "ping" {
		t.Fatalf("raft conn over TLS read %q, %v", buf, err)
	}
	ac.Close()

	refused := func(name string, c Config) {
		t.Helper()
		p := mustPool(t, c)
		err := p.Call(ctx, n.addr, methodEcho, &echoReq{}, nil)
		if !errors.Is(err, ErrUnreachable) || MayHaveReached(err) {
			t.Fatalf("%s: got %v, want ErrUnreachable", name, err)
		}
	}
	// No client certificate.
	noCert := cfg
	noCert.DialTLS = cfg.DialTLS.Clone()
	noCert.DialTLS.Certificates = nil
	refused("no client certificate", noCert)
	waitFor(t, 5*time.Second, "the handshake WARN line", func() bool {
		return strings.Contains(logs.String(), "TLS handshake failed")
	})
	mustContain(t, logs.String(), "[WARN]", "TLS handshake failed")
	// A certificate from another CA.
	other := newTestCA(t)
	otherCfg := cfg
	otherCfg.DialTLS = cfg.DialTLS.Clone()
	otherCfg.DialTLS.Certificates = []tls.Certificate{other.issue(t, testServerName)}
	refused("foreign client certificate", otherCfg)
	// Plain TCP on a TLS port.
	plain := cfg
	plain.DialTLS = nil
	refused("plain TCP", plain)
	// A server certificate without the cluster server name.
	wrongName := tlsConfig(testConfig(t, nil), ca, ca.issue(t, "client.test.corral"))
	n2 := mustNode(t, wrongName, "127.0.0.1:0")
	pw := mustPool(t, cfg)
	if err := pw.Call(ctx, n2.addr, methodEcho, &echoReq{}, nil); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("server without the server name: %v", err)
	}
	// Raft without a client certificate: refused before raft sees it.
	accepted := make(chan error, 1)
	go func() {
		c, err := n.mux.RaftLayer().Accept()
		if err == nil {
			c.Close()
			err = errors.New("raft accepted a connection without a client certificate")
		}
		accepted <- err
	}()
	layerNoCert := &raftLayer{m: &Mux{cfg: noCert}}
	if c, err := layerNoCert.Dial(raft.ServerAddress(n.addr), 2*time.Second); err == nil {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(buf); err == nil || isTimeout(err) {
			t.Fatalf("raft connection without a client certificate was not closed: %v", err)
		}
		c.Close()
	}
	n.mux.RaftLayer().Close()
	if err := recvWithin(t, accepted, 5*time.Second, "raft Accept to end"); !errors.Is(err, ErrClosed) {
		t.Fatal(err)
	}
}
