// Package automtls is the host side of go-plugin's automatic mutual TLS,
// with an ECDSA P-256 certificate instead of go-plugin's P-521 one.
//
// The protocol is go-plugin's AutoMTLS, unchanged: the host puts a fresh
// self-signed certificate in the plugin's environment (PLUGIN_CLIENT_CERT),
// the plugin answers with a certificate of its own as the sixth field of
// its handshake line, and each side trusts exactly the other's certificate.
// The curve is the only difference: TLS stacks outside Go (BoringSSL in
// the grpcio wheels, for one) do not all accept P-521 signatures, and P-256
// is accepted everywhere.
package automtls

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"time"
)

// EnvClientCert is the environment variable that carries the host's
// certificate (PEM) to the plugin.
const EnvClientCert = "PLUGIN_CLIENT_CERT"

// ServerName is the name the plugin's certificate must hold.
const ServerName = "localhost"

// NewClient generates the host's certificate for one plugin launch. It
// returns the environment entry to add to the plugin's command and the TLS
// config for go-plugin's ClientConfig.TLSConfig (with AutoMTLS off);
// go-plugin adds the plugin's certificate from the handshake line to it.
func NewClient() (env string, cfg *tls.Config, err error) {
	certPEM, keyPEM, err := generate()
	if err != nil {
		return "", nil, fmt.Errorf("generating the plugin client certificate: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return "", nil, fmt.Errorf("loading the plugin client certificate: %w", err)
	}
	return EnvClientCert + "=" + string(certPEM), &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS12,
		ServerName:   ServerName,
	}, nil
}

// generate returns a self-signed certificate and its key, both PEM, shaped
// like go-plugin's: it names localhost, is its own CA, and is valid for
// client and server auth.
func generate() (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	sn, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: ServerName, Organization: []string{"Corral"}},
		DNSNames:              []string{ServerName},
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyAgreement | x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		NotBefore:             now.Add(-30 * time.Second),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	return certPEM, keyPEM, nil
}
