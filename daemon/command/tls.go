package command

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/corral-dev/corral/daemon/certs"
)

const tlsHelp = `
Usage: corral tls <subcommand> [options]

  Make the cluster's certificates with Go's crypto (no openssl needed).

Subcommands:

  ca create     Create the cluster CA
  cert create   Create a server (node) or client certificate signed by the CA
`

// TLSCACreateCommand is `corral tls ca create`.
type TLSCACreateCommand struct{ Meta }

// Synopsis implements cli.Command.
func (c *TLSCACreateCommand) Synopsis() string { return "Create the cluster CA" }

// Help implements cli.Command.
func (c *TLSCACreateCommand) Help() string {
	return strings.TrimSpace(`
Usage: corral tls ca create [options]

  Create a CA and write corral-agent-ca.pem and corral-agent-ca-key.pem in
  the current directory (or -dir). Keep the key offline: whoever has it
  can make node certificates.

Options:

  -days=<n>
    Validity in days. Default: 1825.

  -dir=<path>
    Directory to write to. Default: the current directory.
`)
}

// Run implements cli.Command.
func (c *TLSCACreateCommand) Run(args []string) int {
	fs := c.flagSet("tls ca create", false, c.Help)
	days := fs.Int("days", 1825, "")
	dir := fs.String("dir", ".", "")
	pos, err := parse(fs, args)
	if err != nil {
		return ExitError
	}
	if len(pos) != 0 {
		return c.usageError(c.Help(), "this command takes no arguments, got %d", len(pos))
	}
	if *days < 1 {
		return c.usageError(c.Help(), "-days must be at least 1")
	}
	ca, err := certs.CreateCA("corral", time.Duration(*days)*24*time.Hour)
	if err != nil {
		return c.fail(err)
	}
	certPath, keyPath := filepath.Join(*dir, "corral-agent-ca.pem"), filepath.Join(*dir, "corral-agent-ca-key.pem")
	if err := writeNew(certPath, ca.Cert); err != nil {
		return c.fail(err)
	}
	if err := writeNew(keyPath, ca.Key); err != nil {
		return c.fail(err)
	}
	return c.output(map[string]string{"cert_file": certPath, "key_file": keyPath}, func(w io.Writer) {
		fmt.Fprintf(w, "==> Saved %s\n==> Saved %s\n", certPath, keyPath)
	})
}

// TLSCertCreateCommand is `corral tls cert create`.
type TLSCertCreateCommand struct{ Meta }

// Synopsis implements cli.Command.
func (c *TLSCertCreateCommand) Synopsis() string {
	return "Create a node (-server) or client (-client) certificate"
}

// Help implements cli.Command.
func (c *TLSCertCreateCommand) Help() string {
	return strings.TrimSpace(`
Usage: corral tls cert create (-server | -client) [options]

  Create a certificate signed by the cluster CA and write
  <cluster>-server-corral-N.pem / -key.pem (or -client-) with the next
  free N. A server certificate names server.<cluster>.corral, localhost
  and 127.0.0.1 and is what every node's tls block uses; a client
  certificate names client.<cluster>.corral and cannot act as a node.

Options:

  -server, -client
    The kind of certificate (one of them is required).

  -cluster=<name>
    The cluster name (tls.cluster). Default: global.

  -ca=<path>, -key=<path>
    The CA certificate and key. Default: corral-agent-ca.pem and
    corral-agent-ca-key.pem.

  -additional-dnsname=<name>, -additional-ipaddress=<ip>
    More names for the certificate (repeatable), e.g. the address users
    reach the HTTPS API at.

  -days=<n>
    Validity in days. Default: 365.

  -dir=<path>
    Directory to write to. Default: the current directory.
`)
}

// Run implements cli.Command.
func (c *TLSCertCreateCommand) Run(args []string) int {
	fs := c.flagSet("tls cert create", false, c.Help)
	server := fs.Bool("server", false, "")
	client := fs.Bool("client", false, "")
	cluster := fs.String("cluster", "global", "")
	caPath := fs.String("ca", "corral-agent-ca.pem", "")
	keyPath := fs.String("key", "corral-agent-ca-key.pem", "")
	days := fs.Int("days", 365, "")
	dir := fs.String("dir", ".", "")
	var dnsNames, ips listFlag
	fs.Var(&dnsNames, "additional-dnsname", "")
	fs.Var(&ips, "additional-ipaddress", "")
	pos, err := parse(fs, args)
	if err != nil {
		return ExitError
	}
	switch {
	case len(pos) != 0:
		return c.usageError(c.Help(), "this command takes no arguments, got %d", len(pos))
	case *server == *client:
		return c.usageError(c.Help(), "give exactly one of -server and -client")
	case *days < 1:
		return c.usageError(c.Help(), "-days must be at least 1")
	case *cluster == "" || strings.ContainsAny(*cluster, ". "):
		return c.usageError(c.Help(), "-cluster %q: must be a non-empty name without dots or spaces", *cluster)
	}
	req := certs.CertRequest{Cluster: *cluster, Server: *server, DNSNames: dnsNames, ValidFor: time.Duration(*days) * 24 * time.Hour}
	for _, s := range ips {
		ip := net.ParseIP(s)
		if ip == nil {
			return c.usageError(c.Help(), "-additional-ipaddress %q is not an IP address", s)
		}
		req.IPs = append(req.IPs, ip)
	}
	var ca certs.PEM
	if ca.Cert, err = os.ReadFile(*caPath); err != nil {
		return c.fail(fmt.Errorf("read the CA certificate (-ca; make one with corral tls ca create): %w", err))
	}
	if ca.Key, err = os.ReadFile(*keyPath); err != nil {
		return c.fail(fmt.Errorf("read the CA key (-key): %w", err))
	}
	out, err := certs.CreateCert(ca, req)
	if err != nil {
		return c.fail(err)
	}
	kind := "client"
	if *server {
		kind = "server"
	}
	for n := 0; ; n++ {
		certFile := filepath.Join(*dir, fmt.Sprintf("%s-%s-corral-%d.pem", *cluster, kind, n))
		keyFile := filepath.Join(*dir, fmt.Sprintf("%s-%s-corral-%d-key.pem", *cluster, kind, n))
		if _, err := os.Stat(certFile); err == nil {
			continue
		}
		if err := writeNew(certFile, out.Cert); err != nil {
			return c.fail(err)
		}
		if err := writeNew(keyFile, out.Key); err != nil {
			return c.fail(err)
		}
		return c.output(map[string]string{"cert_file": certFile, "key_file": keyFile}, func(w io.Writer) {
			fmt.Fprintf(w, "==> Saved %s\n==> Saved %s\n", certFile, keyFile)
		})
	}
}

// writeNew writes a file that must not exist yet, readable by its owner
// only.
func writeNew(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%s already exists; remove it or use -dir", path)
		}
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}
