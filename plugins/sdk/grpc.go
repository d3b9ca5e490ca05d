package sdk

import (
	"context"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/corral-dev/corral/plugins/proto"
)

// GRPCPlugin adapts a Worker to go-plugin. The plugin side serves Impl; the
// host side dispenses a proto.WorkerClient.
type GRPCPlugin struct {
	// GRPCPlugin speaks gRPC only.
	plugin.NetRPCUnsupportedPlugin

	// Impl is the worker served by the plugin process (nil on the host).
	Impl Worker

	// APIVersion is the worker protocol version served under this plugin
	// set (MinAPIVersion..APIVersion; 0 means APIVersion). Version 1 serves
	// per-job Run streams only and answers Session with Unimplemented, as a
	// plugin built before version 2 does.
	APIVersion int

	// runs tracks in-flight jobs; Serve shares it with the watchdog.
	runs *runTracker
	// logger is the plugin's stderr logger.
	logger hclog.Logger
}

var _ plugin.GRPCPlugin = (*GRPCPlugin)(nil)

// versionedPlugins returns the go-plugin plugin sets Serve offers: w under
// every protocol version from MinAPIVersion to APIVersion. runs and logger
// may be nil.
func versionedPlugins(w Worker, runs *runTracker, logger hclog.Logger) map[int]plugin.PluginSet {
	sets := make(map[int]plugin.PluginSet, APIVersion-MinAPIVersion+1)
	for v := MinAPIVersion; v <= APIVersion; v++ {
		sets[v] = plugin.PluginSet{PluginName: &GRPCPlugin{Impl: w, APIVersion: v, runs: runs, logger: logger}}
	}
	return sets
}

// GRPCServer registers the Worker service for Impl on s.
func (p *GRPCPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	runs, logger := p.runs, p.logger
	if runs == nil {
		runs = newRunTracker()
	}
	if logger == nil {
		logger = Logger()
	}
	api := p.APIVersion
	if api == 0 {
		api = APIVersion
	}
	proto.RegisterWorkerServer(s, &server{impl: p.Impl, api: api, runs: runs, logger: logger})
	return nil
}

// GRPCClient returns a proto.WorkerClient for the host.
func (p *GRPCPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return proto.NewWorkerClient(c), nil
}
