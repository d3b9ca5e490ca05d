package certs

import (
	"crypto/tls"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// files writes a CA and a certificate made by req, and returns Files for
// them.
func files(t *testing.T, ca PEM, req CertRequest) Files {
	t.Helper()
	dir := t.TempDir()
	c, err := CreateCert(ca, req)
	if err != nil {
		t.Fatal(err)
	}
	f := Files{CAFile: filepath.Join(dir, "ca.pem"), CertFile: filepath.Join(dir, "c.pem"), KeyFile: filepath.Join(dir, "k.pem"),
		Cluster: "global", VerifyIncoming: true, VerifyServerHostname: true}
	for path, b := range map[string][]byte{f.CAFile: ca.Cert, f.CertFile: c.Cert, f.KeyFile: c.Key} {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// handshake runs a TLS handshake between server and client configs over
// a pipe and returns the client's and the server's errors.
func handshake(server, client *tls.Config) (clientErr, serverErr error) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	done := make(chan error, 1)
	go func() {
		s := tls.Server(a, server)
		err := s.Handshake()
		if err == nil {
			// TLS 1.3: the client learns of a refused certificate on read.
			_, err = s.Write([]byte{1})
		}
		if err != nil {
			a.Close()
		}
		done <- err
	}()
	c := tls.Client(b, client)
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	err := c.Handshake()
	if err == nil {
		_, err = c.Read(make([]byte, 1))
	}
	return err, <-done
}

// TestNodeTLS: two nodes with server certificates of the cluster CA
// connect; a client certificate of the same CA can neither connect to a
// node nor act as a node that others dial; another CA's server
// certificate is refused.
func TestNodeTLS(t *testing.T) {
	ca, err := CreateCA("global", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	srv := files(t, ca, CertRequest{Cluster: "global", Server: true, ValidFor: time.Hour})
	cli := files(t, ca, CertRequest{Cluster: "global", ValidFor: time.Hour})
	other, _ := CreateCA("global", time.Hour)
	foreign := files(t, other, CertRequest{Cluster: "global", Server: true, ValidFor: time.Hour})
	foreign.CAFile = srv.CAFile // trusts our CA, but its certificate is signed by another
	otherCluster := files(t, ca, CertRequest{Cluster: "staging", Server: true, ValidFor: time.Hour})

	nodeServer, nodeDial, err := NodeTLS(srv)
	if err != nil {
		t.Fatal(err)
	}
	if ce, se := handshake(nodeServer, nodeDial); ce != nil || se != nil {
		t.Fatalf("node to node: client %v, server %v", ce, se)
	}
	// A client certificate dialing a node is refused by the node.
	cliServer, cliDial, err := NodeTLS(cli)
	if err != nil {
		t.Fatal(err)
	}
	if _, se := handshake(nodeServer, cliDial); !errors.Is(se, ErrPeerNotServer) {
		t.Fatalf("client certificate dialing a node: server error %v, want ErrPeerNotServer", se)
	}
	// A client certificate acting as a node is refused by the dialing node.
	if ce, _ := handshake(cliServer, nodeDial); ce == nil {
		t.Fatalf("a node accepted a client certificate as a server")
	}
	// Another CA's certificate, another cluster's: refused both ways.
	fServer, fDial, err := NodeTLS(foreign)
	if err != nil {
		t.Fatal(err)
	}
	if _, se := handshake(nodeServer, fDial); se == nil {
		t.Fatalf("a node accepted a peer of another CA")
	}
	if ce, _ := handshake(fServer, nodeDial); ce == nil {
		t.Fatalf("a node dialed a server of another CA")
	}
	ocServer, ocDial, err := NodeTLS(otherCluster)
	if err != nil {
		t.Fatal(err)
	}
	if _, se := handshake(nodeServer, ocDial); !errors.Is(se, ErrPeerNotServer) {
		t.Fatalf("server certificate of another cluster dialing: %v", se)
	}
	if ce, _ := handshake(ocServer, nodeDial); ce == nil {
		t.Fatalf("a node dialed a server certificate of another cluster")
	}
}

// TestCreateCertRejectsBadCA: a non-CA certificate or a mismatched key
// cannot sign.
func TestCreateCertRejectsBadCA(t *testing.T) {
	ca, _ := CreateCA("global", time.Hour)
	leaf, _ := CreateCert(ca, CertRequest{Cluster: "global", Server: true, ValidFor: time.Hour})
	if _, err := CreateCert(leaf, CertRequest{Cluster: "global", ValidFor: time.Hour}); !errors.Is(err, ErrBadCA) {
		t.Fatalf("leaf as CA: %v", err)
	}
	other, _ := CreateCA("global", time.Hour)
	if _, err := CreateCert(PEM{Cert: ca.Cert, Key: other.Key}, CertRequest{Cluster: "global", ValidFor: time.Hour}); !errors.Is(err, ErrBadCA) {
		t.Fatalf("mismatched key: %v", err)
	}
}
