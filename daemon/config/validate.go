package config

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"slices"
	"strings"
	"time"
)

// GossipKeyBytes is the length of a decoded serf.encrypt key.
const GossipKeyBytes = 32

// minRaftTimeout mirrors hashicorp/raft's ValidateConfig floor.
const minRaftTimeout = 5 * time.Millisecond

// reservedTags are Serf tags the agent sets itself (DESIGN §4).
var reservedTags = []string{"id", "raft", "http", "role", "expect", "plugins"}

// Validate checks every field and returns one error (matching ErrInvalid)
// that lists each problem as "key = value: what is wrong". The gossip key
// is never included in a message.
func (c *Config) Validate() error {
	var v validator
	if strings.TrimSpace(c.NodeName) == "" {
		v.addf("node_name = %q: must not be empty", c.NodeName)
	}
	if c.DataDir == "" && !c.Dev {
		v.addf(`data_dir = "": required (set data_dir or -data-dir, or use -dev)`)
	}
	if net.ParseIP(c.BindAddr) == nil {
		v.addf("bind_addr = %q: must be an IP address", c.BindAddr)
	}
	if c.AdvertiseAddr != "" && net.ParseIP(c.AdvertiseAddr) == nil {
		v.addf("advertise_addr = %q: must be an IP address", c.AdvertiseAddr)
	}
	switch c.LogLevel {
	case "trace", "debug", "info", "warn", "error":
	default:
		v.addf("log_level = %q: must be one of trace, debug, info, warn, error", c.LogLevel)
	}

	ports := []struct {
		key string
		val int
	}{{"ports.http", c.Ports.HTTP}, {"ports.raft", c.Ports.Raft}, {"ports.serf", c.Ports.Serf}}
	used := map[int]string{}
	for _, p := range ports {
		if p.val < 0 || p.val > 65535 {
			v.addf("%s = %d: must be between 1 and 65535 (0 picks a free port)", p.key, p.val)
			continue
		}
		if p.val == 0 {
			continue
		}
		if other, ok := used[p.val]; ok {
			v.addf("%s = %d: already used by %s", p.key, p.val, other)
		}
		used[p.val] = p.key
	}

	s := c.Server
	if s.BootstrapExpect < 0 {
		v.addf("server.bootstrap_expect = %d: must be 0 or more", s.BootstrapExpect)
	}
	if c.Dev && s.BootstrapExpect > 1 {
		v.addf("server.bootstrap_expect = %d: a -dev agent is a single node; must be 1", s.BootstrapExpect)
	}
	for i, addr := range s.RetryJoin {
		if strings.TrimSpace(addr) == "" {
			v.addf("server.retry_join[%d] = %q: must be an address (host or host:port)", i, addr)
		}
	}
	if s.MaxVoters < 1 {
		v.addf("server.max_voters = %d: must be at least 1", s.MaxVoters)
	}
	if s.MinQuorum < 0 {
		v.addf("server.min_quorum = %d: must be 0 or more", s.MinQuorum)
	} else if s.MaxVoters >= 1 && s.MinQuorum > s.MaxVoters {
		v.addf("server.min_quorum = %d: must not exceed server.max_voters = %d", s.MinQuorum, s.MaxVoters)
	}
	v.positive("server.dead_server_cleanup_after", s.DeadServerCleanupAfter)
	v.positive("server.server_stabilization_time", s.ServerStabilizationTime)
	v.positive("server.reconcile_interval", s.ReconcileInterval)

	r := c.Raft
	v.atLeast("raft.heartbeat_timeout", r.HeartbeatTimeout, minRaftTimeout)
	v.atLeast("raft.election_timeout", r.ElectionTimeout, minRaftTimeout)
	v.atLeast("raft.leader_lease_timeout", r.LeaderLeaseTimeout, minRaftTimeout)
	v.atLeast("raft.snapshot_interval", r.SnapshotInterval, minRaftTimeout)
	v.atLeast("raft.commit_timeout", r.CommitTimeout, time.Millisecond)
	if r.LeaderLeaseTimeout > r.HeartbeatTimeout {
		v.addf("raft.leader_lease_timeout = %q: must not exceed raft.heartbeat_timeout = %q",
			r.LeaderLeaseTimeout, r.HeartbeatTimeout)
	}
	if r.SnapshotThreshold == 0 {
		v.addf("raft.snapshot_threshold = 0: must be at least 1")
	}

	if c.Serf.Encrypt != "" {
		key, err := base64.StdEncoding.DecodeString(c.Serf.Encrypt)
		switch {
		case err != nil:
			v.addf(`serf.encrypt: not valid base64; generate a key with "corral keygen"`)
		case len(key) != GossipKeyBytes:
			v.addf(`serf.encrypt: decodes to %d bytes, must be %d; generate a key with "corral keygen"`, len(key), GossipKeyBytes)
		}
	}

	if c.Addresses.HTTP != "" && net.ParseIP(c.Addresses.HTTP) == nil {
		v.addf("addresses.http = %q: must be an IP address", c.Addresses.HTTP)
	}
	t := c.TLS
	if t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" || t.HTTP {
		if t.CAFile == "" || t.CertFile == "" || t.KeyFile == "" {
			v.addf("tls: ca_file, cert_file and key_file must all be set (make them with corral tls ca create and corral tls cert create -server)")
		}
	}
	if t.Cluster == "" || strings.ContainsAny(t.Cluster, ". ") {
		v.addf("tls.cluster = %q: must be a non-empty name without dots or spaces", t.Cluster)
	}

	for _, k := range slices.Sorted(maps.Keys(c.Tags)) {
		if k == "" {
			v.addf(`tags: a tag name must not be empty`)
		}
		for _, r := range reservedTags {
			if k == r {
				v.addf("tags.%s: %q is set by the agent itself; choose another name (reserved: %s)",
					k, k, strings.Join(reservedTags, ", "))
			}
		}
	}

	for _, name := range slices.Sorted(maps.Keys(c.Plugins)) {
		p := c.Plugins[name]
		if name == "" {
			v.addf(`plugin "": a plugin name must not be empty`)
		}
		if p.Concurrency < 1 {
			v.addf("plugin.%s.concurrency = %d: must be at least 1", name, p.Concurrency)
		}
		if p.Checksum != "" {
			if b, err := hex.DecodeString(p.Checksum); err != nil || len(b) != 32 {
				v.addf("plugin.%s.checksum = %q: must be a hex SHA-256 (64 hex digits)", name, p.Checksum)
			}
		}
		if p.Config != nil && !json.Valid(p.Config) {
			v.addf("plugin.%s.config: not valid JSON", name)
		}
	}

	for _, name := range slices.Sorted(maps.Keys(c.Queues)) {
		q := c.Queues[name]
		if name == "" {
			v.addf(`queue "": a queue name must not be empty`)
		}
		if q.MaxAttempts < 1 {
			v.addf("queue.%s.max_attempts = %d: must be at least 1", name, q.MaxAttempts)
		}
		if q.Concurrency < 0 {
			v.addf("queue.%s.concurrency = %d: must be 0 (unlimited) or more", name, q.Concurrency)
		}
		v.positive("queue."+name+".retention", q.Retention)
		if _, _, err := q.QueueRate(name); err != nil {
			v.addf("%s", err)
		}
	}

	v.validatePeriodics(c)

	l := c.Limits
	v.positiveInt("limits.max_payload_bytes", l.MaxPayloadBytes)
	v.positiveInt("limits.max_result_bytes", l.MaxResultBytes)
	v.positiveInt("limits.max_request_bytes", l.MaxRequestBytes)
	if l.MaxPayloadBytes > 0 && l.MaxRequestBytes > 0 && l.MaxPayloadBytes > l.MaxRequestBytes {
		v.addf("limits.max_payload_bytes = %d: must not exceed limits.max_request_bytes = %d",
			l.MaxPayloadBytes, l.MaxRequestBytes)
	}
	v.positive("limits.lease_ttl", l.LeaseTTL)

	return v.err()
}

// validator collects problems so one run reports all of them.
type validator struct {
	problems []string
}

func (v *validator) addf(format string, args ...any) {
	v.problems = append(v.problems, fmt.Sprintf(format, args...))
}

func (v *validator) positive(key string, d time.Duration) {
	if d <= 0 {
		v.addf("%s = %q: must be greater than zero", key, d)
	}
}

func (v *validator) atLeast(key string, d, min time.Duration) {
	if d < min {
		v.addf("%s = %q: must be at least %s", key, d, min)
	}
}

func (v *validator) positiveInt(key string, n int) {
	if n < 1 {
		v.addf("%s = %d: must be at least 1", key, n)
	}
}

func (v *validator) err() error {
	if len(v.problems) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrInvalid, strings.Join(v.problems, "; "))
}
