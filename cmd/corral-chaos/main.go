// Command corral-chaos is Corral's Jepsen-style verification harness. It
// starts N real `corral agent` processes, each in its own network
// namespace on a bridge it creates (or on loopback without root), drives a
// client workload and two every-second periodic jobs while injecting
// faults drawn from a seed (kill -9, SIGSTOP, partitions of several
// shapes), heals, waits for the cluster to converge, and checks the
// recorded history against every node's final state and the test plugin's
// side-effect logs, and every fired periodic job against its tick.
//
// Progress goes to stderr; stdout gets one line:
//
//	RESULT ok=true acked=N lost=N dup_keys=N wrong_state=N diverged=N stuck=N stale_results=N leaders=N voters_mismatch=N faults=N kinds=a,b seed=N net=netns ... periodic_ticks=N periodic_fired=N periodic_skipped=N periodic_dups=N periodic_bad_ticks=N periodic_stalls=N
//
// The exit code is 0 only when ok=true. A failing run keeps its history,
// fault log, side-effect logs and agent logs and prints their folder.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	os.Exit(realMain(os.Args[1:]))
}

// options are the harness's flags.
type options struct {
	nodes    int
	duration time.Duration
	seed     uint64
	clients  int
	corral   string
	plugin   string
	netMode  string
	dir      string
	keep     bool
}

func realMain(args []string) int {
	var o options
	fs := flag.NewFlagSet("corral-chaos", flag.ContinueOnError)
	fs.IntVar(&o.nodes, "nodes", 3, "number of agents (3 or more; 5 adds the majority/minority split)")
	fs.DurationVar(&o.duration, "duration", 60*time.Second, "how long the workload and the faults run")
	fs.Uint64Var(&o.seed, "seed", 0, "seed of the faults and the workload (0: from the clock)")
	fs.IntVar(&o.clients, "clients", 4, "concurrent clients")
	fs.StringVar(&o.corral, "corral", "", "corral binary to test (default: built from this module)")
	fs.StringVar(&o.plugin, "plugin", "", "chaos plugin binary (default: built from this module)")
	fs.StringVar(&o.netMode, "net", "auto", "netns, loopback, or auto (netns when root with ip and tc)")
	fs.StringVar(&o.dir, "dir", "", "work folder (default: a new temp folder)")
	fs.BoolVar(&o.keep, "keep", false, "keep the work folder of a passing run too")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if o.nodes < 3 {
		fmt.Fprintln(os.Stderr, "corral-chaos: -nodes must be at least 3")
		return 2
	}
	if o.seed == 0 {
		o.seed = uint64(time.Now().UnixNano()) % 1_000_000_000
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	line, ok, err := runChaos(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "corral-chaos:", err)
		if line == "" {
			// Still one RESULT line: the run could not be checked.
			line = fmt.Sprintf("RESULT ok=false seed=%d error=%q", o.seed, err.Error())
		}
	}
	fmt.Println(line)
	if !ok {
		return 1
	}
	return 0
}
