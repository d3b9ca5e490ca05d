// Package freeport hands out loopback ports for agents that must be told a
// port before they bind it (Serf's port, an agent started with -http-port
// and friends): in-process test clusters, the end-to-end tests and
// `corral bench -local`.
//
// The usual trick, listening on port 0 and closing, returns a port from
// the kernel's ephemeral range, which the kernel also gives to outgoing
// connections: on a busy machine a test's own HTTP clients took such a
// port between the check and the agent's bind ("address already in use").
// Ports from here come from below the ephemeral range, where only an
// explicit bind can take them, are free for both TCP and UDP when handed
// out, and are never handed out twice by one process.
package freeport

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
)

// lowest is the first port considered: below it are well-known and
// registered services a developer machine may run.
const lowest = 10000

var (
	mu     sync.Mutex
	handed = map[int]bool{}
	next   int // the next port to try; 0 until first use
)

// Take returns n distinct ports that were free for TCP and UDP on
// 127.0.0.1 just now.
func Take(n int) ([]int, error) {
	mu.Lock()
	defer mu.Unlock()
	lo, hi := lowest, ephemeralLow()
	if hi-lo < 100 {
		return nil, fmt.Errorf("no port range below the ephemeral ports (%d)", hi)
	}
	if next == 0 {
		// Processes running side by side (go test runs packages in
		// parallel) start at different places in the range.
		next = lo + rand.IntN(hi-lo)
	}
	out := make([]int, 0, n)
	for tried := 0; len(out) < n; tried++ {
		if tried > hi-lo {
			return nil, errors.New("no free port below the ephemeral range")
		}
		p := next
		if next++; next >= hi {
			next = lo
		}
		if handed[p] || !free(p) {
			continue
		}
		handed[p] = true
		out = append(out, p)
	}
	return out, nil
}

// free reports whether port p can be bound on 127.0.0.1 for TCP and UDP.
func free(p int) bool {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	defer l.Close()
	u, err := net.ListenPacket("udp", addr)
	if err != nil {
		return false
	}
	u.Close()
	return true
}

// ephemeralLow is the first port of the kernel's ephemeral range (Linux;
// 32768 elsewhere, the common default).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) < 1 {
		return 32768
	}
	v, err := strconv.Atoi(f[0])
	if err != nil || v <= lowest {
		return 32768
	}
	return v
}
