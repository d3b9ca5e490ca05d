package config

import (
	"os"
	"time"
)

// Default values, as documented on the Config fields.
const (
	DefaultHTTPPort = 4780
	DefaultRaftPort = 4781
	DefaultSerfPort = 4782

	// DefaultPluginConcurrency is a plugin's concurrency when its block
	// does not set one; the built-in exec plugin gets DefaultExecConcurrency.
	DefaultPluginConcurrency = 4
	DefaultExecConcurrency   = 8

	DefaultMaxAttempts = 25
	DefaultRetention   = 24 * time.Hour
)

// Default returns a configuration with every documented default filled in.
// DataDir is empty and must be set (by a file or -data-dir) unless Dev.
func Default() *Config {
	name, err := os.Hostname()
	if err != nil || name == "" {
		name = "corral"
	}
	return &Config{
		NodeName: name,
		BindAddr: "0.0.0.0",
		LogLevel: "info",
		Ports: Ports{
			HTTP: DefaultHTTPPort,
			Raft: DefaultRaftPort,
			Serf: DefaultSerfPort,
		},
		Server: Server{
			MaxVoters:               5,
			DeadServerCleanupAfter:  30 * time.Second,
			ServerStabilizationTime: 10 * time.Second,
			ReconcileInterval:       60 * time.Second,
		},
		Raft: Raft{
			HeartbeatTimeout:   time.Second,
			ElectionTimeout:    time.Second,
			LeaderLeaseTimeout: 500 * time.Millisecond,
			CommitTimeout:      15 * time.Millisecond,
			SnapshotThreshold:  8192,
			SnapshotInterval:   120 * time.Second,
			TrailingLogs:       10240,
		},
		ACL:     ACL{Enabled: true},
		TLS:     TLS{VerifyIncoming: true, VerifyServerHostname: true, Cluster: "global"},
		Tags:    map[string]string{},
		Plugins: map[string]Plugin{},
		Queues:  map[string]Queue{},
		Limits: Limits{
			MaxPayloadBytes: 1 << 20,
			MaxResultBytes:  64 << 10,
			MaxRequestBytes: 16 << 20,
			LeaseTTL:        30 * time.Second,
		},
	}
}

// Dev returns the defaults of `corral agent -dev`: one node bound to
// 127.0.0.1 that bootstraps at once, with its data in a temporary directory
// the daemon creates (DataDir "").
func Dev() *Config {
	c := Default()
	c.BindAddr = "127.0.0.1"
	c.Server.BootstrapExpect = 1
	c.LogLevel = "info"
	c.DataDir = ""
	c.ACL.Enabled = false
	c.Dev = true
	return c
}

// DefaultPlugin returns the settings a plugin gets when no `plugin` block
// names it.
func DefaultPlugin(name string) Plugin {
	if name == "exec" {
		return Plugin{Concurrency: DefaultExecConcurrency}
	}
	return Plugin{Concurrency: DefaultPluginConcurrency}
}

// PluginEnabled reports whether the built-in plugin name runs: a plugin
// block's enabled wins; without one, every plugin runs except exec
// (anyone who may submit an exec job runs commands as the agent's user)
// outside -dev.
func (c *Config) PluginEnabled(name string) bool {
	if p, ok := c.Plugins[name]; ok && p.Enabled != nil {
		return *p.Enabled
	}
	return name != "exec" || c.Dev
}

// DefaultQueue returns the settings a queue gets when no `queue` block
// names it.
func DefaultQueue() Queue {
	return Queue{MaxAttempts: DefaultMaxAttempts, Retention: DefaultRetention}
}

// Clone returns a deep copy of c.
func (c *Config) Clone() *Config {
	out := *c
	out.Server.RetryJoin = append([]string(nil), c.Server.RetryJoin...)
	out.Tags = make(map[string]string, len(c.Tags))
	for k, v := range c.Tags {
		out.Tags[k] = v
	}
	out.Plugins = make(map[string]Plugin, len(c.Plugins))
	for k, v := range c.Plugins {
		v.Config = append([]byte(nil), v.Config...)
		if len(v.Config) == 0 {
			v.Config = nil
		}
		out.Plugins[k] = v
	}
	out.Queues = make(map[string]Queue, len(c.Queues))
	for k, v := range c.Queues {
		out.Queues[k] = v
	}
	if c.Periodics != nil {
		out.Periodics = make(map[string]Periodic, len(c.Periodics))
	}
	for k, v := range c.Periodics {
		v.Payload = append([]byte(nil), v.Payload...)
		out.Periodics[k] = v
	}
	return &out
}
