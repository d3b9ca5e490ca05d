package main

import (
	"context"
	"net"
)

// network is where the agents and the clients live and what can be done
// to the links between agents.
type network interface {
	// kind is "netns" or "loopback" (the RESULT line's net=).
	kind() string
	// host is the address node i binds and advertises; ports gives its
	// HTTP, raft and Serf ports.
	host(i int) string
	ports(i int) [3]int
	// command prefixes the agent command line of node i (e.g. with
	// `ip netns exec NS`); nil runs it as is.
	command(i int) []string
	// dial opens a client connection (from the client's namespace).
	dial(ctx context.Context, network, addr string) (net.Conn, error)
	// partitions reports whether drop works (loopback: no).
	partitions() bool
	// drop makes packets from node a to node b vanish (one way).
	drop(a, b int) error
	// heal removes every drop.
	heal() error
	// close kills whatever still runs in the network and removes it.
	close()
}
