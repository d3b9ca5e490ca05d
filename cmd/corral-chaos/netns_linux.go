package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// nsPrefix names every namespace the harness creates; a run adds its pid,
// so leftovers of a crashed run can be told from a live one.
const nsPrefix = "corral-chaos-"

// subnet is the private range used inside the namespaces (and nowhere
// else: the root namespace gets no address, route or link).
const subnet = "10.213.77."

// netnsNet puts each agent and the clients in their own network namespace,
// joined by veth pairs to a bridge that lives in a hub namespace. A drop
// is a u32 filter on the sender's egress that classifies packets for one
// destination into an htb class whose qdisc is blackhole: this kernel has
// neither netem nor the drop action, and a silent drop (unlike a blackhole
// route) looks like a real partition: connections hang, nothing is refused.
type netnsNet struct {
	name   string // nsPrefix + pid
	nodes  int
	logf   func(format string, args ...any)
	made   []string // namespaces created, to delete
	client string   // client namespace
}

// netnsAvailable reports whether namespaces can be used here (root and a
// working `ip netns`).
func netnsAvailable() error {
	if os.Geteuid() != 0 {
		return errors.New("not root")
	}
	for _, tool := range []string{"ip", "tc"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s not installed: %w", tool, err)
		}
	}
	return nil
}

func (n *netnsNet) ns(i int) string { return fmt.Sprintf("%s-n%d", n.name, i+1) }
func (n *netnsNet) hub() string     { return n.name + "-hub" }

// newNetnsNet builds the topology for nodes agents and one client.
func newNetnsNet(nodes int, logf func(string, ...any)) (_ *netnsNet, err error) {
	cleanLeftovers(logf)
	n := &netnsNet{name: nsPrefix + strconv.Itoa(os.Getpid()), nodes: nodes, logf: logf}
	n.client = n.name + "-cl"
	defer func() {
		if err != nil {
			n.close()
		}
	}()
	hub := n.hub()
	steps := [][]string{
		{"ip", "netns", "add", hub},
		{"ip", "-n", hub, "link", "set", "lo", "up"},
		{"ip", "-n", hub, "link", "add", "br0", "type", "bridge"},
		{"ip", "-n", hub, "link", "set", "br0", "up"},
	}
	if err := runAll(steps); err != nil {
		return nil, err
	}
	n.made = append(n.made, hub)
	for i := 0; i <= nodes; i++ {
		ns, addr, veth := n.client, subnet+"100", "cl"
		if i < nodes {
			ns, addr, veth = n.ns(i), n.host(i), fmt.Sprintf("n%d", i+1)
		}
		if err := run("ip", "netns", "add", ns); err != nil {
			return nil, err
		}
		n.made = append(n.made, ns)
		steps := [][]string{
			{"ip", "-n", hub, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns},
			{"ip", "-n", hub, "link", "set", veth, "master", "br0", "up"},
			{"ip", "-n", ns, "addr", "add", addr + "/24", "dev", "eth0"},
			{"ip", "-n", ns, "link", "set", "eth0", "up"},
			{"ip", "-n", ns, "link", "set", "lo", "up"},
		}
		if i < nodes {
			steps = append(steps,
				[]string{"tc", "-n", ns, "qdisc", "add", "dev", "eth0", "root", "handle", "1:", "htb", "default", "1"},
				[]string{"tc", "-n", ns, "class", "add", "dev", "eth0", "parent", "1:", "classid", "1:1", "htb", "rate", "10gbit"},
				[]string{"tc", "-n", ns, "class", "add", "dev", "eth0", "parent", "1:", "classid", "1:2", "htb", "rate", "10gbit"},
				[]string{"tc", "-n", ns, "qdisc", "add", "dev", "eth0", "parent", "1:2", "handle", "2:", "blackhole"},
			)
		}
		if err := runAll(steps); err != nil {
			return nil, err
		}
	}
	return n, nil
}

func (n *netnsNet) kind() string      { return "netns" }
func (n *netnsNet) host(i int) string { return subnet + strconv.Itoa(11+i) }
func (n *netnsNet) ports(int) [3]int  { return [3]int{4780, 4781, 4782} }
func (n *netnsNet) partitions() bool  { return true }
func (n *netnsNet) command(i int) []string {
	return []string{"ip", "netns", "exec", n.ns(i)}
}

func (n *netnsNet) drop(a, b int) error {
	return run("tc", "-n", n.ns(a), "filter", "add", "dev", "eth0", "parent", "1:", "protocol", "ip",
		"prio", strconv.Itoa(10+b), "u32", "match", "ip", "dst", n.host(b)+"/32", "flowid", "1:2")
}

func (n *netnsNet) heal() error {
	var errs []error
	for i := 0; i < n.nodes; i++ {
		out, err := exec.Command("tc", "-n", n.ns(i), "filter", "show", "dev", "eth0").Output()
		if err != nil {
			errs = append(errs, fmt.Errorf("tc filter show in %s: %w", n.ns(i), err))
			continue
		}
		if len(strings.TrimSpace(string(out))) == 0 {
			continue
		}
		if err := run("tc", "-n", n.ns(i), "filter", "del", "dev", "eth0", "parent", "1:"); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// dial connects from inside the client namespace: the socket is created
// by a thread that joined that namespace for the moment (a socket stays in
// the namespace it was made in).
func (n *netnsNet) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	return dialIn(ctx, filepath.Join("/var/run/netns", n.client), network, addr)
}

func dialIn(ctx context.Context, nsPath, network, addr string) (net.Conn, error) {
	target, err := os.Open(nsPath)
	if err != nil {
		return nil, fmt.Errorf("open netns: %w", err)
	}
	defer target.Close()
	runtime.LockOSThread()
	orig, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
	if err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("open own netns: %w", err)
	}
	defer orig.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("enter client netns: %w", err)
	}
	var d net.Dialer
	conn, dialErr := d.DialContext(ctx, network, addr)
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		// The thread stays in the wrong namespace: keep it locked so it
		// exits with this goroutine instead of serving others.
		if conn != nil {
			conn.Close()
		}
		return nil, fmt.Errorf("leave client netns: %w", err)
	}
	runtime.UnlockOSThread()
	return conn, dialErr
}

// close kills every process left in the namespaces and deletes them.
func (n *netnsNet) close() {
	for i := len(n.made) - 1; i >= 0; i-- {
		removeNetns(n.made[i], n.logf)
	}
	n.made = nil
}

// removeNetns kills what runs in ns and deletes it (its veth ends and the
// bridge go with it).
func removeNetns(ns string, logf func(string, ...any)) {
	for range 50 {
		out, _ := exec.Command("ip", "netns", "pids", ns).Output()
		pids := strings.Fields(string(out))
		if len(pids) == 0 {
			break
		}
		for _, p := range pids {
			if pid, err := strconv.Atoi(p); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := run("ip", "netns", "del", ns); err != nil {
		logf("remove namespace %s: %v", ns, err)
	}
}

// cleanLeftovers removes the namespaces of earlier runs whose harness
// process is gone (a crashed or killed run).
func cleanLeftovers(logf func(string, ...any)) {
	entries, _ := os.ReadDir("/var/run/netns")
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, nsPrefix) {
			continue
		}
		rest := strings.TrimPrefix(name, nsPrefix)
		pid, err := strconv.Atoi(rest[:max(strings.IndexByte(rest, '-'), 0)])
		if err == nil && pid != os.Getpid() && syscall.Kill(pid, 0) == nil {
			continue // a live run
		}
		logf("removing leftover namespace %s", name)
		removeNetns(name, logf)
	}
}

func run(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func runAll(steps [][]string) error {
	for _, s := range steps {
		if err := run(s...); err != nil {
			return err
		}
	}
	return nil
}
