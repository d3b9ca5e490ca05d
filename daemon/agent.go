// Package daemon is the Corral agent: it translates the config and wires
// the node's parts together — raft (raftnode), the replicated server
// (server), the worker (worker), the node plane (rpc), gossip membership
// (discovery), the plugins (plugins/host) and the HTTP API (httpapi). It
// holds no logic of its own beyond that wiring.
package daemon

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/corral-dev/corral/daemon/certs"
	"github.com/corral-dev/corral/daemon/config"
	"github.com/corral-dev/corral/daemon/httpapi"
	"github.com/corral-dev/corral/daemon/raftnode"
	"github.com/corral-dev/corral/daemon/rpc"
	"github.com/corral-dev/corral/daemon/server"
	"github.com/corral-dev/corral/daemon/telemetry"
	"github.com/corral-dev/corral/daemon/worker"
	"github.com/corral-dev/corral/discovery"
	"github.com/corral-dev/corral/plugins/host"
	"github.com/corral-dev/corral/queue"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// Version is the agent's version, reported by /v1/agent/self.
var Version = "0.1.0-dev"

// Agent is one running Corral node.
type Agent struct {
	cfg    *config.Config
	logger hclog.Logger

	dataDir   string
	removeDir bool // a -dev temp dir, removed on shutdown
	nodeID    string
	raftAddr  string // advertised host:port of the node port
	httpAddr  string // listening host:port
	// httpAdvertise is the HTTP address other nodes show users.
	httpAdvertise string

	store *queue.Store
	node  *raftnode.Node
	// startIndex is the last raft index on disk at start: reads wait until
	// the FSM has applied it.
	startIndex uint64

	rpcSrv *rpc.Server
	mux    *rpc.Mux
	pool   *rpc.Pool

	server     *server.Server
	worker     *worker.Worker
	logs       *worker.Logs
	plugins    *host.Manager
	serf       *discovery.Agent
	membership *discovery.Manager
	pluginExe  string
	noBuiltins bool
	// loadConfig re-reads the configuration for Reload (nil: keep it).
	loadConfig func() (*config.Config, error)
	reloadMu   sync.Mutex

	httpSrv *http.Server
	httpLn  net.Listener

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	shutdownOnce sync.Once
	shutdownCh   chan struct{}
	shutdownErr  error
}

// New builds an agent from a validated config. Nothing listens until Start.
func New(cfg *config.Config, logger hclog.Logger, opts ...Option) (*Agent, error) {
	if cfg == nil {
		return nil, errors.New("nil config")
	}
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	a := &Agent{
		cfg:        cfg,
		logger:     logger,
		store:      queue.New(),
		shutdownCh: make(chan struct{}),
	}
	for _, o := range opts {
		o(a)
	}
	return a, nil
}

// Start opens the data dir and starts the node plane, raft, the server,
// the plugins, the worker, gossip and the HTTP API. On error everything
// already started is stopped again.
func (a *Agent) Start() (err error) {
	a.ctx, a.cancel = context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			_ = a.Shutdown()
		}
	}()
	if err := a.openDataDir(); err != nil {
		return err
	}
	a.warnInsecure()
	metrics, err := a.newMetrics()
	if err != nil {
		return err
	}
	a.store.SetObserver(metrics.Observe)
	bind := a.cfg.BindAddr
	if bind == "" {
		bind = "127.0.0.1"
	}
	advertise := a.cfg.AdvertiseAddr
	if advertise == "" {
		if advertise, err = advertiseFor(bind); err != nil {
			return err
		}
	}
	if err := a.startNodePlane(bind, advertise); err != nil {
		return err
	}
	a.node, err = raftnode.Open(raftnode.Config{
		DataDir: a.dataDir, NodeID: a.nodeID, Raft: a.cfg.Raft, Layer: a.mux.RaftLayer(),
	}, a.store, a.logger.Named("raft"))
	if err != nil {
		return err
	}
	a.startIndex = a.node.Raft.LastIndex()
	a.server = server.New(server.Config{
		NodeID: a.nodeID, LeaseTTL: a.cfg.Limits.LeaseTTL, Queues: queueConfigs(a.cfg), Periodics: periodicConfigs(a.cfg), Rates: queueRates(a.cfg),
		MaxResultBytes: a.cfg.Limits.MaxResultBytes, Logger: a.logger.Named("server"),
	}, a.node.Raft, a.node.LeaderCh(), a.store)
	a.server.SetForwarder(forwarder{pool: a.pool})
	a.registerRPC()
	if a.cfg.Dev || a.cfg.Server.BootstrapExpect == 1 {
		if err := a.node.BootstrapSingle(a.nodeID); err != nil {
			return err
		}
	}
	a.logs = worker.NewLogs(a.dataDir)
	a.goRun(func(ctx context.Context) {
		a.logs.Sweep(ctx, func(id string) bool { _, ok := a.store.Get(id); return ok }, a.logger.Named("logs"))
	})
	if err := a.startPlugins(a.ctx); err != nil {
		return err
	}
	httpBind := a.cfg.Addresses.HTTP
	if httpBind == "" {
		httpBind = "127.0.0.1"
	}
	a.httpLn, err = net.Listen("tcp", net.JoinHostPort(httpBind, strconv.Itoa(a.cfg.Ports.HTTP)))
	if err != nil {
		return fmt.Errorf("http listener on %s:%d (is another agent running? set ports.http): %w", httpBind, a.cfg.Ports.HTTP, err)
	}
	a.httpAddr = a.httpLn.Addr().String()
	if a.cfg.TLS.HTTP {
		tc, err := certs.HTTPSConfig(tlsFiles(a.cfg.TLS))
		if err != nil {
			return err
		}
		a.httpLn = tls.NewListener(a.httpLn, tc)
	}
	httpHost := httpBind
	if ip := net.ParseIP(httpBind); ip != nil && ip.IsUnspecified() {
		httpHost = advertise
	}
	a.httpAdvertise = net.JoinHostPort(httpHost, strconv.Itoa(a.httpLn.Addr().(*net.TCPAddr).Port))
	if err := a.startDiscovery(bind, advertise); err != nil {
		return err
	}
	a.goRun(a.server.Run)
	a.worker = worker.New(worker.Config{
		Node: a.cfg.NodeName, Tags: a.cfg.Tags, LeaseTTL: a.cfg.Limits.LeaseTTL,
		MaxResult: a.cfg.Limits.MaxResultBytes, Logger: a.logger.Named("worker"),
	}, a.plugins, leaderLink{a: a}, a.logs)
	a.goRun(a.worker.Run)
	a.startHTTP(metrics)
	a.logger.Info("agent started", "node", a.cfg.NodeName, "id", a.nodeID, "http", a.httpAddr, "raft", a.raftAddr, "data_dir", a.dataDir)
	return nil
}

// startNodePlane listens on the node port: raft and node-to-node RPC, one
// port, selected by the first byte of each connection.
func (a *Agent) startNodePlane(bind, advertise string) error {
	// Listen first: with port 0 the system picks one, with no window for
	// another process to take it.
	ln, err := net.Listen("tcp", net.JoinHostPort(bind, strconv.Itoa(a.cfg.Ports.Raft)))
	if err != nil {
		return fmt.Errorf("node port %s:%d (is another agent running? set ports.raft): %w", bind, a.cfg.Ports.Raft, err)
	}
	a.raftAddr = net.JoinHostPort(advertise, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
	rc := rpc.DefaultConfig()
	rc.AdvertiseAddr = a.raftAddr
	rc.Logger = a.logger.Named("rpc")
	if a.cfg.TLS.Enabled() {
		if rc.TLS, rc.DialTLS, err = certs.NodeTLS(tlsFiles(a.cfg.TLS)); err != nil {
			return err
		}
	}
	if a.rpcSrv, err = rpc.NewServer(rc); err != nil {
		_ = ln.Close()
		return err
	}
	if a.pool, err = rpc.NewPool(rc); err != nil {
		_ = ln.Close()
		return err
	}
	if a.mux, err = rpc.NewMux(ln, a.rpcSrv, rc); err != nil {
		_ = ln.Close()
		return err
	}
	return nil
}

// newMetrics builds the agent's Prometheus registry (see telemetry).
func (a *Agent) newMetrics() (*telemetry.Metrics, error) {
	bridge, err := telemetry.GlobalBridge()
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	m, err := telemetry.New(telemetry.Config{
		Node:    a.cfg.NodeName,
		Version: Version,
		Queues:  a.store.Queues,
		Plugins: func() []telemetry.Plugin {
			if a.plugins == nil {
				return nil
			}
			var out []telemetry.Plugin
			for _, p := range a.plugins.Plugins() {
				if p.Status == host.StateSkipped {
					continue
				}
				out = append(out, telemetry.Plugin{Name: p.Name, Ready: p.Status == host.StateReady,
					Concurrency: p.Concurrency, Running: p.Running, Restarts: p.Restarts})
			}
			return out
		},
		IsLeader: func() bool { return a.node != nil && a.node.Raft.State() == raft.Leader },
		Bridge:   bridge,
	})
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	return m, nil
}

// startHTTP serves the public API.
func (a *Agent) startHTTP(metrics *telemetry.Metrics) {
	hc := httpapi.Config{
		NodeName:        a.cfg.NodeName,
		MaxRequestBytes: a.cfg.Limits.MaxRequestBytes,
		MaxPayloadBytes: a.cfg.Limits.MaxPayloadBytes,
		EnableDebug:     a.cfg.EnableDebug,
		Metrics:         metrics.Handler(),
		Snapshots:       snapshots{a: a},
		Reloader:        reloader{a: a},
		Logger:          a.logger.Named("http"),
	}
	if a.cfg.ACL.Enabled {
		hc.ACLs = a.store
	}
	h := httpapi.New(hc, a.store, a.server, cluster{a: a}, jobAccess{a: a}, pluginList{a: a})
	a.httpSrv = &http.Server{
		Handler:           metrics.Instrument(h.Handler()),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          a.logger.Named("http").StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true}),
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		if err := a.httpSrv.Serve(a.httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.logger.Error("http server stopped", "error", err)
		}
	}()
}

// tlsFiles translates the tls block.
func tlsFiles(t config.TLS) certs.Files {
	return certs.Files{CAFile: t.CAFile, CertFile: t.CertFile, KeyFile: t.KeyFile, Cluster: t.Cluster,
		VerifyIncoming: t.VerifyIncoming, VerifyServerHostname: t.VerifyServerHostname}
}

// warnInsecure logs, at every start, each protection the config turned
// off outside -dev.
func (a *Agent) warnInsecure() {
	if a.cfg.Dev {
		return
	}
	if !a.cfg.ACL.Enabled {
		a.logger.Warn("ACLs are disabled (acl { enabled = false }): anyone who reaches the HTTP API can submit jobs, remove peers and stop this agent")
	}
	if a.cfg.Serf.Encrypt == "" {
		a.logger.Warn("gossip is not encrypted (no serf.encrypt): anyone who reaches the serf port can read and inject membership; make a key with corral keygen")
	}
	if !a.cfg.TLS.Enabled() {
		a.logger.Warn("the node plane has no TLS (no tls block): anyone who reaches the raft port can speak raft to this node; see the Security section of the README")
	}
	if a.cfg.PluginEnabled("exec") {
		a.logger.Warn("the exec plugin is enabled: anyone allowed to submit exec jobs runs commands as this agent's user")
	}
}

// queueConfigs translates the config's queue blocks.
func queueConfigs(cfg *config.Config) map[string]queue.QueueConfig {
	out := make(map[string]queue.QueueConfig, len(cfg.Queues))
	for name, q := range cfg.Queues {
		out[name] = queue.QueueConfig{MaxAttempts: q.MaxAttempts, Concurrency: q.Concurrency, Retention: q.Retention}
	}
	return out
}

// queueRates translates the rate limits of the config's queue blocks
// (validated before).
func queueRates(cfg *config.Config) map[string]queue.Rate {
	out := map[string]queue.Rate{}
	for name, q := range cfg.Queues {
		if r, ok, err := q.QueueRate(name); ok && err == nil {
			out[name] = r
		}
	}
	return out
}

// periodicConfigs translates the config's periodic blocks (validated
// before, so a translation error cannot happen here).
func periodicConfigs(cfg *config.Config) []queue.Periodic {
	out := make([]queue.Periodic, 0, len(cfg.Periodics))
	for name, p := range cfg.Periodics {
		if qp, err := p.QueuePeriodic(name); err == nil {
			out = append(out, qp)
		}
	}
	return out
}

// goRun runs f in a goroutine owned by the agent.
func (a *Agent) goRun(f func(ctx context.Context)) {
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		f(a.ctx)
	}()
}

// openDataDir creates (or, in dev, makes a temp) data dir and loads the node ID.
func (a *Agent) openDataDir() error {
	a.dataDir = a.cfg.DataDir
	if a.dataDir == "" {
		if !a.cfg.Dev {
			return errors.New("data_dir is required (or run with -dev)")
		}
		dir, err := os.MkdirTemp("", "corral-dev-")
		if err != nil {
			return fmt.Errorf("create dev data dir: %w", err)
		}
		a.dataDir, a.removeDir = dir, true
	}
	if err := os.MkdirAll(a.dataDir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	id, err := raftnode.LoadNodeID(a.dataDir)
	if err != nil {
		return err
	}
	a.nodeID = id
	if a.cfg.NodeName == "" {
		host, _ := os.Hostname()
		a.cfg.NodeName = host
	}
	return nil
}

// NodeID returns the node's permanent ID (its raft server ID).
func (a *Agent) NodeID() string { return a.nodeID }

// HTTPAddr returns the address the HTTP API listens on (host:port).
func (a *Agent) HTTPAddr() string { return a.httpAddr }

// RaftAddr returns the advertised address of the node port (host:port).
func (a *Agent) RaftAddr() string { return a.raftAddr }

// DataDir returns the data directory in use.
func (a *Agent) DataDir() string { return a.dataDir }

// Raft exposes the raft instance for in-process tests and tools.
func (a *Agent) Raft() *raft.Raft { return a.node.Raft }

// Store exposes the local queue state (read-only use).
func (a *Agent) Store() *queue.Store { return a.store }

// Leave leaves the cluster gracefully (a leader transfers leadership
// first, and the leader removes this node from raft at once), then shuts
// down.
func (a *Agent) Leave() error {
	if a.membership != nil {
		ctx, cancel := context.WithTimeout(context.Background(), leaveTimeout)
		err := a.membership.Leave(ctx)
		cancel()
		if err != nil {
			a.logger.Warn("graceful leave incomplete", "error", err)
		}
	}
	return a.Shutdown()
}

// Shutdown stops everything without leaving; bounded in time. It is safe
// to call more than once.
func (a *Agent) Shutdown() error {
	a.shutdownOnce.Do(func() {
		var errs []error
		if a.httpSrv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			if err := a.httpSrv.Shutdown(ctx); err != nil {
				_ = a.httpSrv.Close()
			}
			cancel()
		}
		if a.cancel != nil {
			a.cancel()
		}
		if a.plugins != nil {
			a.plugins.Close()
		}
		if a.serf != nil {
			if err := a.serf.Shutdown(); err != nil {
				errs = append(errs, err)
			}
		}
		if a.pool != nil {
			_ = a.pool.Close()
		}
		if a.node != nil {
			if err := a.node.Close(); err != nil {
				errs = append(errs, err)
			}
		}
		if a.mux != nil {
			_ = a.mux.Close()
		}
		if a.rpcSrv != nil {
			_ = a.rpcSrv.Close()
		}
		a.wg.Wait()
		if a.removeDir {
			_ = os.RemoveAll(a.dataDir)
		}
		a.shutdownErr = errors.Join(errs...)
		close(a.shutdownCh)
		a.logger.Info("agent stopped")
	})
	return a.shutdownErr
}

// ShutdownCh is closed when the agent has stopped (e.g. after a leave
// requested through the API).
func (a *Agent) ShutdownCh() <-chan struct{} { return a.shutdownCh }

// advertiseFor picks the address to advertise for a bind address.
func advertiseFor(bind string) (string, error) {
	ip := net.ParseIP(bind)
	if ip != nil && !ip.IsUnspecified() {
		return bind, nil
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return "", fmt.Errorf("find an address to advertise: %w", err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() && n.IP.IsPrivate() {
			return n.IP.String(), nil
		}
	}
	return "", fmt.Errorf("bind_addr %s: no private IPv4 address to advertise; set advertise_addr", bind)
}

// portOrFree returns port, or a free TCP port on host when port is 0.
func portOrFree(host string, port int) (int, error) {
	if port != 0 {
		return port, nil
	}
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
