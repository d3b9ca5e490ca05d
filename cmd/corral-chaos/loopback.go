package main

import (
	"context"
	"errors"
	"net"
	"strconv"
)

// loopbackNet runs every agent on 127.0.0.1 with its own ports: no
// partitions, process faults only (the fallback without root or ip netns).
type loopbackNet struct {
	portsOf [][3]int
}

func newLoopbackNet(nodes int) (*loopbackNet, error) {
	n := &loopbackNet{}
	for range nodes {
		var p [3]int
		for j := range p {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return nil, err
			}
			defer l.Close() // held until all are chosen, so none repeats
			p[j] = l.Addr().(*net.TCPAddr).Port
		}
		n.portsOf = append(n.portsOf, p)
	}
	return n, nil
}

func (n *loopbackNet) kind() string         { return "loopback" }
func (n *loopbackNet) host(int) string      { return "127.0.0.1" }
func (n *loopbackNet) ports(i int) [3]int   { return n.portsOf[i] }
func (n *loopbackNet) command(int) []string { return nil }
func (n *loopbackNet) partitions() bool     { return false }
func (n *loopbackNet) drop(a, b int) error {
	return errors.New("loopback network: no partitions (node " + strconv.Itoa(a) + " → " + strconv.Itoa(b) + ")")
}
func (n *loopbackNet) heal() error { return nil }
func (n *loopbackNet) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}
func (n *loopbackNet) close() {}
