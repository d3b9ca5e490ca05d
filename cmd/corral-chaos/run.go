package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// runChaos runs one campaign and returns the RESULT line and the verdict.
// Everything it starts (agents, namespaces) is gone when it returns.
func runChaos(ctx context.Context, o options) (line string, ok bool, err error) {
	start := time.Now()
	logf := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "%8.3fs %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}
	dir := o.dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "corral-chaos-"); err != nil {
			return "", false, err
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", false, err
	}
	defer func() {
		if ok && !o.keep {
			_ = os.RemoveAll(dir)
			return
		}
		fmt.Fprintf(os.Stderr, "corral-chaos: history, faults, side-effect and agent logs kept in %s\n", dir)
	}()
	logf("seed %d, %d nodes, %s, work folder %s; times are seconds since %s", o.seed, o.nodes, o.duration, dir, start.UTC().Format(time.RFC3339Nano))

	bin, plugin, err := binaries(ctx, o, dir, logf)
	if err != nil {
		return "", false, err
	}
	net, err := openNetwork(o, logf)
	if err != nil {
		return "", false, err
	}
	logf("network: %s", net.kind())
	var agents []*agent
	defer func() {
		for _, a := range agents {
			if err := a.kill(); err != nil {
				logf("%v", err)
			}
		}
		net.close()
		logf("cleaned up: agents stopped, %s network removed", net.kind())
	}()
	pluginDir := filepath.Join(dir, "plugins")
	if err := os.MkdirAll(pluginDir, 0o755); err != nil {
		return "", false, err
	}
	if err := copyFile(plugin, filepath.Join(pluginDir, "chaos")); err != nil {
		return "", false, err
	}
	for i := range o.nodes {
		a, err := newAgent(i, filepath.Join(dir, "nodes"), bin, agentConfig{nodes: o.nodes, net: net, pluginDir: pluginDir})
		if err != nil {
			return "", false, err
		}
		agents = append(agents, a)
		if err := a.start(); err != nil {
			return "", false, err
		}
	}
	cl := newClient(net)
	if !poll(ctx, 60*time.Second, func() bool {
		ld := cl.leader(ctx, agents)
		if ld < 0 {
			return false
		}
		rc, ok := cl.raftConfig(ctx, agents[ld])
		return ok && voters(rc) == o.nodes
	}) {
		return "", false, fmt.Errorf("cluster did not form within 60s (agent logs in %s)", dir)
	}
	logf("cluster formed")

	rec, err := newRecorder(filepath.Join(dir, "history.jsonl"), start)
	if err != nil {
		return "", false, err
	}
	defer rec.close()
	faultLog, err := os.Create(filepath.Join(dir, "faults.jsonl"))
	if err != nil {
		return "", false, err
	}
	defer faultLog.Close()
	kinds := faultKinds(o.nodes, net)
	nem := &nemesis{agents: agents, net: net, cl: cl, rng: rand.New(rand.NewPCG(o.seed, 0x6e656d)),
		kinds: kinds, start: start, logf: logf, log: faultLog}
	wl := &workload{rec: rec, cl: cl, agents: agents, seed: o.seed, logf: logf}
	pw := &periodicWorkload{cl: cl, agents: agents, logf: logf}
	if err := pw.apply(ctx); err != nil {
		return "", false, err
	}
	obsCtx, stopObs := context.WithCancel(ctx)
	obsDone := make(chan struct{})
	go func() {
		defer close(obsDone)
		pw.observe(obsCtx)
	}()
	stopObserver := func() {
		stopObs()
		<-obsDone
	}
	defer stopObserver()

	runCtx, cancel := context.WithTimeout(ctx, o.duration)
	done := make(chan struct{})
	go func() {
		defer close(done)
		nem.run(runCtx)
	}()
	wl.run(runCtx, o.clients)
	<-done
	cancel()
	if ctx.Err() != nil {
		return "", false, fmt.Errorf("interrupted")
	}
	logf("workload and faults over: %d operations, %d faults; healing", len(rec.history()), len(nem.records()))
	if err := healAll(net, agents); err != nil {
		logf("heal: %v", err)
	}
	if err := pw.park(ctx); err != nil {
		logf("%v", err)
	}
	stopObserver()
	settle(ctx, cl, agents, logf)
	nodes := collect(ctx, cl, agents, logf)
	effects, err := readEffects(agents)
	if err != nil {
		return "", false, err
	}
	if b, err := json.MarshalIndent(nodes, "", "  "); err == nil {
		_ = os.WriteFile(filepath.Join(dir, "final.json"), b, 0o644)
	}
	pin := pw.input()
	if b, err := json.MarshalIndent(pin, "", "  "); err == nil {
		_ = os.WriteFile(filepath.Join(dir, "periodic.json"), b, 0o644)
	}
	r := check(checkInput{Ops: rec.history(), Faults: nem.records(), Effects: effects, Nodes: nodes, Periodic: pin})
	for _, p := range r.Problems {
		logf("FAIL %s", p)
	}
	logf("%d executions in the side-effect logs; %s", len(effects), summary(rec.history(), effects, reference(nodes).Jobs))
	logf("periodic: %d ticks up to the last fired, %d jobs fired (%d seen with their tick), %d ticks skipped (%d of them in a second with one leader throughout), %d fired twice, %d off the rules, %d stalls under a steady leader",
		r.PeriodicTicks, r.PeriodicFired, r.PeriodicPinned, r.PeriodicSkipped, r.PeriodicSkippedSteady, r.PeriodicDups, r.PeriodicBadTicks, r.PeriodicStalls)
	line = resultLine(r, nem.records(), kinds, o.seed, net.kind())
	return line, r.ok(), nil
}

// openNetwork picks the network: namespaces when possible (or asked).
func openNetwork(o options, logf func(string, ...any)) (network, error) {
	switch o.netMode {
	case "loopback":
		return newLoopbackNet(o.nodes)
	case "netns", "auto":
		err := netnsAvailable()
		if err == nil {
			var n network
			if n, err = newNetnsNet(o.nodes, logf); err == nil {
				return n, nil
			}
		}
		if o.netMode == "netns" {
			return nil, fmt.Errorf("network namespaces: %w", err)
		}
		logf("network namespaces unavailable (%v): loopback, process faults only", err)
		return newLoopbackNet(o.nodes)
	}
	return nil, fmt.Errorf("-net %q: want netns, loopback or auto", o.netMode)
}

// binaries returns the corral and plugin binaries, building them from this
// module when not given.
func binaries(ctx context.Context, o options, dir string, logf func(string, ...any)) (string, string, error) {
	bin, plugin := o.corral, o.plugin
	for _, b := range []struct {
		path *string
		pkg  string
		name string
	}{
		{&bin, "github.com/corral-dev/corral/cmd/corral", "corral"},
		{&plugin, "github.com/corral-dev/corral/cmd/corral-chaos/chaosplugin", "chaos"},
	} {
		if *b.path != "" {
			continue
		}
		*b.path = filepath.Join(dir, "bin", b.name)
		logf("building %s", b.pkg)
		out, err := exec.CommandContext(ctx, "go", "build", "-o", *b.path, b.pkg).CombinedOutput()
		if err != nil {
			return "", "", fmt.Errorf("go build %s (run from inside the corral module, or pass -corral and -plugin): %w: %s", b.pkg, err, strings.TrimSpace(string(out)))
		}
	}
	for _, p := range []*string{&bin, &plugin} {
		abs, err := filepath.Abs(*p)
		if err != nil {
			return "", "", err
		}
		*p = abs
	}
	return bin, plugin, nil
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o755)
}
