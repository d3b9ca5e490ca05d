// Package certs makes the cluster's certificates with Go's crypto (no
// openssl): a CA, server certificates naming server.<cluster>.corral and
// client certificates naming client.<cluster>.corral; and builds the TLS
// configurations of the node plane (mutual TLS) and of HTTPS.
package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"
)

// ErrBadCA means the CA certificate or key cannot be used to sign.
var ErrBadCA = errors.New("unusable CA")

// ServerName is the DNS name every node's certificate carries.
func ServerName(cluster string) string { return "server." + cluster + ".corral" }

// ClientName is the DNS name of client certificates.
func ClientName(cluster string) string { return "client." + cluster + ".corral" }

// PEM is a certificate and its private key, PEM encoded.
type PEM struct {
	Cert []byte
	Key  []byte
}

// CreateCA makes a self-signed CA for cluster, valid for validFor.
func CreateCA(cluster string, validFor time.Duration) (PEM, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return PEM{}, fmt.Errorf("generate CA key: %w", err)
	}
	serial, err := serialNumber()
	if err != nil {
		return PEM{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "Corral CA " + cluster, Organization: []string{"Corral"}},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(validFor),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return PEM{}, fmt.Errorf("create CA certificate: %w", err)
	}
	return encode(der, key)
}

// CertRequest describes a certificate to sign.
type CertRequest struct {
	// Cluster is the <cluster> of server.<cluster>.corral.
	Cluster string
	// Server makes a node certificate (server and client auth, named
	// server.<cluster>.corral, localhost and 127.0.0.1); otherwise a
	// client certificate (client auth only, named client.<cluster>.corral).
	Server bool
	// DNSNames and IPs are added to the certificate's names.
	DNSNames []string
	IPs      []net.IP
	// ValidFor is the certificate's lifetime.
	ValidFor time.Duration
}

// CreateCert signs a certificate for req with the CA in ca.
func CreateCert(ca PEM, req CertRequest) (PEM, error) {
	caCert, caKey, err := parseCA(ca)
	if err != nil {
		return PEM{}, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return PEM{}, fmt.Errorf("generate key: %w", err)
	}
	serial, err := serialNumber()
	if err != nil {
		return PEM{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     now.Add(req.ValidFor),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		DNSNames:     append([]string(nil), req.DNSNames...),
		IPAddresses:  append([]net.IP(nil), req.IPs...),
	}
	if req.Server {
		tmpl.Subject = pkix.Name{CommonName: ServerName(req.Cluster)}
		tmpl.DNSNames = append([]string{ServerName(req.Cluster), "localhost"}, tmpl.DNSNames...)
		tmpl.IPAddresses = append([]net.IP{net.IPv4(127, 0, 0, 1)}, tmpl.IPAddresses...)
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	} else {
		tmpl.Subject = pkix.Name{CommonName: ClientName(req.Cluster)}
		tmpl.DNSNames = append([]string{ClientName(req.Cluster)}, tmpl.DNSNames...)
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return PEM{}, fmt.Errorf("sign certificate: %w", err)
	}
	return encode(der, key)
}

// parseCA reads a CA certificate and key.
func parseCA(ca PEM) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	cb, _ := pem.Decode(ca.Cert)
	if cb == nil || cb.Type != "CERTIFICATE" {
		return nil, nil, fmt.Errorf("%w: no PEM certificate in the CA file", ErrBadCA)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrBadCA, err)
	}
	if !cert.IsCA {
		return nil, nil, fmt.Errorf("%w: the certificate is not a CA", ErrBadCA)
	}
	kb, _ := pem.Decode(ca.Key)
	if kb == nil {
		return nil, nil, fmt.Errorf("%w: no PEM key in the CA key file", ErrBadCA)
	}
	key, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: CA key: %w", ErrBadCA, err)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, nil, fmt.Errorf("%w: the key does not belong to the CA certificate", ErrBadCA)
	}
	return cert, key, nil
}

func encode(der []byte, key *ecdsa.PrivateKey) (PEM, error) {
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return PEM{}, fmt.Errorf("encode key: %w", err)
	}
	return PEM{
		Cert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		Key:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}),
	}, nil
}

func serialNumber() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("serial number: %w", err)
	}
	return n, nil
}
