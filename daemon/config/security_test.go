package config

import (
	"strings"
	"testing"
)

// TestSecureDefaults: outside -dev ACLs are on, exec is off, TLS verifies
// both ways and the HTTP API address is unset (127.0.0.1); -dev turns
// ACLs off and exec on.
func TestSecureDefaults(t *testing.T) {
	d := Default()
	if !d.ACL.Enabled || d.PluginEnabled("exec") || !d.PluginEnabled("echo") || d.Addresses.HTTP != "" ||
		!d.TLS.VerifyIncoming || !d.TLS.VerifyServerHostname || d.TLS.Enabled() || d.TLS.ServerName() != "server.global.corral" {
		t.Fatalf("defaults: acl %v exec %v echo %v http %q tls %+v", d.ACL.Enabled, d.PluginEnabled("exec"), d.PluginEnabled("echo"), d.Addresses.HTTP, d.TLS)
	}
	dev := Dev()
	if dev.ACL.Enabled || !dev.PluginEnabled("exec") {
		t.Fatalf("dev: acl %v exec %v, want ACLs off and exec on", dev.ACL.Enabled, dev.PluginEnabled("exec"))
	}
}

// TestLoadSecurityBlocks: the acl, tls, addresses blocks and a plugin's
// enabled key load; an incomplete tls block and a bad address are
// refused naming the key.
func TestLoadSecurityBlocks(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, dir, "sec.hcl", `
data_dir = "/tmp/x"
addresses { http = "0.0.0.0" }
acl { enabled = false }
tls {
  ca_file   = "/ca.pem"
  cert_file = "/c.pem"
  key_file  = "/k.pem"
  http      = true
  cluster   = "eu"
}
plugin "exec" { enabled = true }
plugin "http" { enabled = false }
`)
	c := mustLoad(t, Default(), path)
	if c.Addresses.HTTP != "0.0.0.0" || c.ACL.Enabled || !c.TLS.Enabled() || !c.TLS.HTTP || c.TLS.ServerName() != "server.eu.corral" ||
		!c.PluginEnabled("exec") || c.PluginEnabled("http") {
		t.Fatalf("loaded %+v %+v %+v", c.Addresses, c.ACL, c.TLS)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("validate: %v", err)
	}
	bad := mustLoad(t, Default(), writeFile(t, dir, "bad.hcl", "data_dir = \"/tmp/x\"\naddresses { http = \"nope\" }\ntls { ca_file = \"/ca.pem\" }\n"))
	err := bad.Validate()
	if err == nil || !strings.Contains(err.Error(), "addresses.http") || !strings.Contains(err.Error(), "cert_file") {
		t.Fatalf("validate bad: %v", err)
	}
}
