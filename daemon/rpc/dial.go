package rpc

import (
	"context"
	"crypto/tls"
	"net"
	"time"
)

// dialNode dials addr, runs the TLS client handshake when tlsCfg is set, and
// writes the protocol byte, all bounded by ctx.
func dialNode(ctx context.Context, tlsCfg *tls.Config, addr string, proto Proto) (net.Conn, error) {
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		raw.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { raw.SetDeadline(time.Unix(1, 0)) })
	conn := raw
	if tlsCfg != nil {
		tc := tls.Client(raw, clientTLS(tlsCfg, addr))
		if err := tc.HandshakeContext(ctx); err != nil {
			stop()
			raw.Close()
			return nil, err
		}
		conn = tc
	}
	if _, err := conn.Write([]byte{byte(proto)}); err != nil {
		stop()
		raw.Close()
		return nil, err
	}
	if !stop() {
		raw.Close()
		return nil, context.Cause(ctx)
	}
	raw.SetDeadline(time.Time{})
	return conn, nil
}

// clientTLS returns cfg with ServerName set to addr's host when it is empty.
func clientTLS(cfg *tls.Config, addr string) *tls.Config {
	if cfg.ServerName != "" {
		return cfg
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	c := cfg.Clone()
	c.ServerName = host
	return c
}
