// Package config loads and validates the agent's HCL configuration
// (DESIGN §9): defaults first, then files in order, then flags.
package config

import "time"

// Config is the whole agent configuration.
type Config struct {
	// NodeName is this node's Serf name; default the hostname.
	NodeName string
	// DataDir holds node-id, raft/, serf/ and logs/. Required unless Dev.
	DataDir string
	// BindAddr is the address every listener binds to; default "0.0.0.0" ("127.0.0.1" in dev).
	BindAddr string
	// AdvertiseAddr is the address other nodes use; default: BindAddr, or the first private IP when BindAddr is 0.0.0.0.
	AdvertiseAddr string
	// LogLevel is trace, debug, info, warn or error; default "info".
	LogLevel string
	// Ports holds the listener ports.
	Ports Ports
	// Addresses overrides the bind address per listener.
	Addresses Addresses
	// ACL holds the access control settings of the HTTP API.
	ACL ACL
	// TLS holds the certificates of the node plane and, optionally, HTTPS.
	TLS TLS
	// Server holds cluster formation settings.
	Server Server
	// Raft holds raft timing settings.
	Raft Raft
	// Serf holds gossip settings.
	Serf Serf
	// Tags are user node tags, advertised through Serf and matched against job constraints.
	Tags map[string]string
	// PluginDir is scanned for external worker plugins; "" = none.
	PluginDir string
	// Plugins holds per-plugin settings, keyed by plugin name.
	Plugins map[string]Plugin
	// Queues holds per-queue settings, keyed by queue name.
	Queues map[string]Queue
	// Periodics holds the periodic jobs, keyed by name (periodic.go).
	Periodics map[string]Periodic
	// Limits holds request and job limits.
	Limits Limits
	// EnableDebug serves Go's pprof profiles under /debug/pprof/ on the
	// HTTP API; default false.
	EnableDebug bool
	// Dev marks a -dev agent: one node, bootstrapped at once, temp data dir.
	Dev bool
}

// Ports are the listener ports; 0 in a test means "pick a free one".
type Ports struct {
	HTTP int // default 4780
	Raft int // default 4781
	Serf int // default 4782 (TCP and UDP)
}

// Addresses overrides where a listener binds. The HTTP API binds
// 127.0.0.1 unless HTTP says otherwise (Consul's client_addr default):
// node-to-node traffic never uses it.
type Addresses struct {
	// HTTP is the IP the HTTP API binds; default "127.0.0.1".
	HTTP string
}

// ACL configures token-based access control on the HTTP API.
type ACL struct {
	// Enabled turns ACLs on; default true (false in -dev). Turning them
	// off outside -dev logs a warning at every start.
	Enabled bool
}

// TLS configures mutual TLS on the node plane (raft and node-to-node RPC)
// and, with HTTP, HTTPS on the API. It is on when CAFile is set.
type TLS struct {
	// CAFile is the PEM file of the cluster CA.
	CAFile string
	// CertFile and KeyFile are this node's server certificate and key
	// (made by `corral tls cert create -server`).
	CertFile string
	KeyFile  string
	// VerifyIncoming requires a peer certificate signed by the CA on every
	// connection to the node port (and on HTTPS, a client certificate);
	// default true.
	VerifyIncoming bool
	// VerifyServerHostname requires peers' certificates to name
	// server.<cluster>.corral, so a client certificate cannot act as a
	// node; default true.
	VerifyServerHostname bool
	// HTTP serves the API over HTTPS with the same certificate; default
	// false.
	HTTP bool
	// Cluster is the <cluster> part of server.<cluster>.corral; default
	// "global".
	Cluster string
}

// Enabled reports whether a tls block configured certificates.
func (t TLS) Enabled() bool { return t.CAFile != "" }

// ServerName is the name every node's certificate must carry.
func (t TLS) ServerName() string { return "server." + t.Cluster + ".corral" }

// Server holds cluster formation and membership settings.
type Server struct {
	// BootstrapExpect is the number of servers to wait for before bootstrapping; 0 = don't bootstrap (join an existing cluster). Dev implies 1.
	BootstrapExpect int
	// RetryJoin are Serf addresses (host:port) to join, retried until one answers.
	RetryJoin []string
	// MaxVoters caps the number of voters; default 5.
	MaxVoters int
	// DeadServerCleanupAfter is how long a failed server stays in raft; default 30s.
	DeadServerCleanupAfter time.Duration
	// ServerStabilizationTime is how long a new server must be healthy before promotion; default 10s.
	ServerStabilizationTime time.Duration
	// MinQuorum is the smallest voter count dead-server cleanup may leave; default 0 (no floor beyond quorum safety).
	MinQuorum int
	// ReconcileInterval is the period of the leader's full membership reconcile; default 60s.
	ReconcileInterval time.Duration
	// LeaveOnTerminate makes SIGTERM leave the cluster gracefully; default false (SIGINT always leaves).
	LeaveOnTerminate bool
}

// Raft holds raft settings.
type Raft struct {
	HeartbeatTimeout   time.Duration // default 1s
	ElectionTimeout    time.Duration // default 1s
	LeaderLeaseTimeout time.Duration // default 500ms
	SnapshotThreshold  uint64        // default 8192
	SnapshotInterval   time.Duration // default 120s
	TrailingLogs       uint64        // default 10240
	// CommitTimeout is how soon an idle leader tells followers what has
	// committed (they learn it from the next AppendEntries): lower means
	// faster reads of fresh writes on followers under light load, at the
	// price of more idle traffic. Default 15ms.
	CommitTimeout time.Duration
}

// Serf holds gossip settings.
type Serf struct {
	// Encrypt is a base64 32-byte gossip key (see `corral keygen`); "" = no encryption. Never logged.
	Encrypt string
}

// Plugin holds one plugin's host-side settings.
type Plugin struct {
	// Concurrency is the number of jobs run at once; default 4 (exec: 8).
	Concurrency int
	// Enabled turns a built-in plugin on or off; nil means the plugin's
	// default: on, except exec, which is off unless enabled (on in -dev).
	Enabled *bool
	// Checksum is an optional hex SHA-256 of the plugin binary.
	Checksum string
	// Config is the plugin's own `config {}` block, converted to JSON; nil when absent.
	Config []byte
}

// Queue holds one queue's settings; the leader replicates them.
type Queue struct {
	MaxAttempts int           // default 25
	Concurrency int           // default 0 = unlimited
	Retention   time.Duration // default 24h
	// Rate limits claims of the queue's jobs cluster-wide: "N/s", "N/m"
	// or "N/h"; default "" = no limit (the API's limit is kept).
	Rate string
	// Burst is how many jobs may go at once under Rate; default 1.
	Burst int
}

// Limits holds size and time limits. The `limits { max_payload_bytes,
// max_result_bytes, max_request_bytes, lease_ttl }` block is a Corral
// extension to the configuration in DESIGN §9.
type Limits struct {
	MaxPayloadBytes int           // default 1 MiB
	MaxResultBytes  int           // default 64 KiB
	MaxRequestBytes int           // default 16 MiB (a batch submit)
	LeaseTTL        time.Duration // default 30s
}
