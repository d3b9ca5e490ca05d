package certs

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// ErrPeerNotServer means a peer on the node plane presented a certificate
// that does not name server.<cluster>.corral (a client or user
// certificate, or one of another cluster).
var ErrPeerNotServer = errors.New("peer certificate is not a server certificate of this cluster")

// Files names the PEM files of a node.
type Files struct {
	CAFile   string
	CertFile string
	KeyFile  string
	// Cluster is the <cluster> of server.<cluster>.corral.
	Cluster string
	// VerifyIncoming requires a certificate of the CA from every peer that
	// connects to the node port.
	VerifyIncoming bool
	// VerifyServerHostname requires every peer's certificate, in either
	// direction, to name server.<cluster>.corral.
	VerifyServerHostname bool
}

// NodeTLS returns the node plane's TLS configurations: server (for the
// node port's listener) and dial (for connections to other nodes). Both
// sides present this node's certificate and verify the peer's against
// the CA; a peer must be a server of the cluster.
func NodeTLS(f Files) (server, dial *tls.Config, err error) {
	cert, pool, err := load(f)
	if err != nil {
		return nil, nil, err
	}
	name := ServerName(f.Cluster)
	server = &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		ClientCAs:    pool,
		ClientAuth:   tls.VerifyClientCertIfGiven,
	}
	if f.VerifyIncoming {
		server.ClientAuth = tls.RequireAndVerifyClientCert
	}
	if f.VerifyServerHostname {
		// The chain was verified by the handshake; the peer must also be
		// a node, not a client certificate of the same CA.
		server.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				if f.VerifyIncoming {
					return ErrPeerNotServer
				}
				return nil
			}
			if err := cs.PeerCertificates[0].VerifyHostname(name); err != nil {
				return fmt.Errorf("%w: %w", ErrPeerNotServer, err)
			}
			return nil
		}
	}
	dial = &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		RootCAs:      pool,
		ServerName:   name,
	}
	if !f.VerifyServerHostname {
		// Verify the chain only, whatever name the peer's certificate has.
		dial.InsecureSkipVerify = true
		dial.VerifyConnection = func(cs tls.ConnectionState) error {
			return verifyChain(cs, pool, x509.ExtKeyUsageServerAuth)
		}
	}
	return server, dial, nil
}

// HTTPSConfig returns the HTTP API's TLS configuration: this node's
// certificate; client certificates are verified when given (ACL tokens,
// not certificates, authenticate API users).
func HTTPSConfig(f Files) (*tls.Config, error) {
	cert, pool, err := load(f)
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		ClientCAs:    pool,
		ClientAuth:   tls.VerifyClientCertIfGiven,
	}, nil
}

// ClientConfig returns the TLS configuration of an API client: the CA to
// trust (empty: the system's) and an optional client certificate.
func ClientConfig(caFile, certFile, keyFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pool, err := loadPool(caFile)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	if certFile != "" || keyFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("load client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

func load(f Files) (tls.Certificate, *x509.CertPool, error) {
	cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("tls: load cert_file and key_file: %w", err)
	}
	pool, err := loadPool(f.CAFile)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	return cert, pool, nil
}

func loadPool(caFile string) (*x509.CertPool, error) {
	b, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("tls: read ca_file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("tls: ca_file %s: no PEM certificate", caFile)
	}
	return pool, nil
}

// verifyChain checks the peer's chain against pool for usage.
func verifyChain(cs tls.ConnectionState, pool *x509.CertPool, usage x509.ExtKeyUsage) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("peer presented no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{usage}})
	return err
}
