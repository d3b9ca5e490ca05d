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

	// runs tracks in-flight jobs; Serve shares it with the watchdog.
	runs *runTracker
	// logger is the plugin's stderr logger.
	logger hclog.Logger
}

var _ plugin.GRPCPlugin = (*GRPCPlugin)(nil)

// GRPCServer registers the Worker service for Impl on s.
func (p *GRPCPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	runs, logger := p.runs, p.logger
	if runs == nil {
		runs = newRunTracker()
	}
	if logger == nil {
		logger = Logger()
	}
	proto.RegisterWorkerServer(s, &server{impl: p.Impl, runs: runs, logger: logger})
	return nil
}

// GRPCClient returns a proto.WorkerClient for the host.
func (p *GRPCPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return proto.NewWorkerClient(c), nil
}
