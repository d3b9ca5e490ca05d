package automtls

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"slices"
	"strings"
	"testing"
)

func TestNewClient(t *testing.T) {
	env, cfg, err := NewClient()
	if err != nil {
		t.Fatal(err)
	}
	pemText, ok := strings.CutPrefix(env, EnvClientCert+"=")
	if !ok {
		t.Fatalf("env entry %q does not set %s", env, EnvClientCert)
	}
	block, _ := pem.Decode([]byte(pemText))
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("%s is not a PEM certificate: %q", EnvClientCert, pemText)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	key, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok || key.Curve != elliptic.P256() {
		t.Errorf("key is %T, want ECDSA P-256", cert.PublicKey)
	}
	if !cert.IsCA || !slices.Equal(cert.DNSNames, []string{"localhost"}) ||
		!slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageClientAuth) || !slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageServerAuth) {
		t.Errorf("certificate: CA %v, names %v, ext key usage %v", cert.IsCA, cert.DNSNames, cert.ExtKeyUsage)
	}
	// The plugin trusts exactly this certificate as its client CA.
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("the certificate does not verify against itself for client auth: %v", err)
	}
	if len(cfg.Certificates) != 1 || cfg.ServerName != "localhost" || cfg.MinVersion != tls.VersionTLS12 || cfg.RootCAs != nil {
		t.Errorf("TLS config: %+v", cfg)
	}
	if env2, _, _ := NewClient(); env2 == env {
		t.Error("two launches got the same certificate")
	}
}
