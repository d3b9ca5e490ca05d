package freeport

import (
	"net"
	"strconv"
	"testing"
)

// TestTakeGivesDistinctBindablePortsBelowTheEphemeralRange: every port is
// bindable for TCP and UDP, none repeats across calls, and none is in the
// range the kernel gives to outgoing connections.
func TestTakeGivesDistinctBindablePortsBelowTheEphemeralRange(t *testing.T) {
	seen := map[int]bool{}
	for range 5 {
		ports, err := Take(20)
		if err != nil {
			t.Fatal(err)
		}
		if len(ports) != 20 {
			t.Fatalf("Take(20) returned %d ports", len(ports))
		}
		for _, p := range ports {
			if seen[p] {
				t.Fatalf("port %d handed out twice", p)
			}
			seen[p] = true
			if p < lowest || p >= ephemeralLow() {
				t.Fatalf("port %d outside [%d, %d)", p, lowest, ephemeralLow())
			}
			addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
			l, err := net.Listen("tcp", addr)
			if err != nil {
				t.Fatalf("port %d not bindable for TCP: %v", p, err)
			}
			u, err := net.ListenPacket("udp", addr)
			if err != nil {
				l.Close()
				t.Fatalf("port %d not bindable for UDP: %v", p, err)
			}
			u.Close()
			l.Close()
		}
	}
}

// TestTakeSkipsPortsInUse: a port someone holds is not handed out.
func TestTakeSkipsPortsInUse(t *testing.T) {
	ports, err := Take(1)
	if err != nil {
		t.Fatal(err)
	}
	held := ports[0] + 1 // the port Take tries next
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(held)))
	if err != nil {
		t.Fatalf("hold port %d: %v", held, err)
	}
	defer l.Close()
	mu.Lock()
	next = held
	mu.Unlock()
	got, err := Take(1)
	if err != nil {
		t.Fatal(err)
	}
	if got[0] == held {
		t.Fatalf("Take handed out port %d, which is held", held)
	}
}
