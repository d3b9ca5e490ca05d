// Command testplugin is a misbehaving plugin for the host tests. It acts
// according to the name it is installed under:
//
//	hang        a worker whose Run ignores cancellation
//	stdout      prints to stdout before serving
//	badcookie   a go-plugin server with another magic cookie
//	badversion  a Corral plugin that only speaks protocol version 3
//	v1only      a plugin as built before protocol version 2: it serves only
//	            version 1 (a Run stream per job, no Session)
//	notls       a Corral plugin that ignores PLUGIN_CLIENT_CERT and serves
//	            plain gRPC (no mTLS)
//	plainstderr writes a plain (non-JSON) line to stderr, then serves
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hashicorp/go-plugin"

	"github.com/corral-dev/corral/plugins/sdk"
)

// worker answers "ok", or never returns when hang is set.
type worker struct{ hang bool }

func (w worker) Info() sdk.Info { return sdk.Info{Name: "testplugin", Version: "0.0.1"} }

func (w worker) Run(ctx context.Context, job sdk.Job, r sdk.Reporter) ([]byte, error) {
	if w.hang {
		r.Log("hanging")
		select {} // ignores ctx on purpose
	}
	r.Log("running " + job.ID)
	return []byte("ok"), nil
}

func main() {
	switch name := filepath.Base(os.Args[0]); name {
	case "hang":
		sdk.Serve(worker{hang: true})
	case "stdout":
		fmt.Println("hello from stdout")
		sdk.Serve(worker{})
	case "badcookie":
		plugin.Serve(&plugin.ServeConfig{
			HandshakeConfig:  plugin.HandshakeConfig{ProtocolVersion: 1, MagicCookieKey: "OTHER_APP_PLUGIN", MagicCookieValue: "x"},
			VersionedPlugins: map[int]plugin.PluginSet{1: {sdk.PluginName: &sdk.GRPCPlugin{Impl: worker{}}}},
			GRPCServer:       plugin.DefaultGRPCServer,
		})
	case "badversion":
		plugin.Serve(&plugin.ServeConfig{
			HandshakeConfig:  sdk.Handshake,
			VersionedPlugins: map[int]plugin.PluginSet{3: {sdk.PluginName: &sdk.GRPCPlugin{Impl: worker{}}}},
			GRPCServer:       plugin.DefaultGRPCServer,
		})
	case "v1only":
		plugin.Serve(&plugin.ServeConfig{
			HandshakeConfig:  sdk.Handshake,
			VersionedPlugins: map[int]plugin.PluginSet{1: {sdk.PluginName: &sdk.GRPCPlugin{Impl: worker{}, APIVersion: 1}}},
			GRPCServer:       plugin.DefaultGRPCServer,
			Logger:           sdk.Logger(),
		})
	case "notls":
		_ = os.Unsetenv("PLUGIN_CLIENT_CERT") // go-plugin then serves without TLS
		sdk.Serve(worker{})
	case "plainstderr":
		fmt.Fprintln(os.Stderr, "hello from plain stderr")
		sdk.Serve(worker{})
	default:
		fmt.Fprintf(os.Stderr, "testplugin: unknown role %q\n", name)
		os.Exit(2)
	}
}
