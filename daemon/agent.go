// Package daemon wires Corral together: config, raft, the queue FSM, the
// HTTP API, leader forwarding, the dispatcher and membership. It is the only
// package that knows all the others.
package daemon

import (
	"errors"

	"github.com/corral-dev/corral/daemon/config"
	"github.com/hashicorp/go-hclog"
)

// Agent is one running Corral node.
type Agent struct{}

// New builds an agent from a validated config. Nothing listens until Start.
func New(cfg *config.Config, logger hclog.Logger) (*Agent, error) {
	return nil, errors.New("not implemented")
}

// Start opens the data dir, starts raft, serf, plugins and the HTTP API.
func (a *Agent) Start() error { return errors.New("not implemented") }

// HTTPAddr returns the address the HTTP API listens on (host:port).
func (a *Agent) HTTPAddr() string { return "" }

// Leave leaves the cluster gracefully (transferring leadership first if this
// node leads), then shuts down.
func (a *Agent) Leave() error { return errors.New("not implemented") }

// Shutdown stops everything without leaving; bounded in time.
func (a *Agent) Shutdown() error { return errors.New("not implemented") }

// ShutdownCh is closed when the agent stops on its own (e.g. after a leave
// requested through the API).
func (a *Agent) ShutdownCh() <-chan struct{} { return nil }
