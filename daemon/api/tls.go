package api

import (
	"crypto/tls"
	"net/http"
)

// SetTLSConfig makes the client use cfg for https:// addresses (the CA
// to trust, an optional client certificate). Call it before the first
// request.
func (c *Client) SetTLSConfig(cfg *tls.Config) {
	if t, ok := c.http.Transport.(*http.Transport); ok {
		t.TLSClientConfig = cfg
	}
}
