package discovery

import (
	"net"
	"sort"
	"strconv"
	"strings"

	"github.com/hashicorp/serf/serf"
)

// Serf tag names set by the Agent. User tags may not use them.
const (
	TagID           = "id"           // node ID (the raft ServerID)
	TagRaft         = "raft"         // raft address, host:port
	TagHTTP         = "http"         // HTTP API address, host:port
	TagRole         = "role"         // always RoleServer for Corral nodes
	TagExpect       = "expect"       // bootstrap_expect of the node ("0" when unset)
	TagPlugins      = "plugins"      // comma-separated plugin names
	TagBootstrapped = "bootstrapped" // "1" once the node's raft has a configuration
)

// RoleServer is the value of the role tag of every Corral node. Members
// without it are ignored by the Manager.
const RoleServer = "server"

var reservedTags = []string{TagID, TagRaft, TagHTTP, TagRole, TagExpect, TagPlugins, TagBootstrapped}

// MemberStatus is a member's state as seen by Serf.
type MemberStatus string

// Member states. Their string values are what the HTTP API shows.
const (
	StatusNone    MemberStatus = "none"
	StatusAlive   MemberStatus = "alive"
	StatusLeaving MemberStatus = "leaving"
	StatusLeft    MemberStatus = "left"
	StatusFailed  MemberStatus = "failed"
)

// String returns the status name.
func (s MemberStatus) String() string { return string(s) }

func statusFromSerf(s serf.MemberStatus) MemberStatus {
	switch s {
	case serf.StatusAlive:
		return StatusAlive
	case serf.StatusLeaving:
		return StatusLeaving
	case serf.StatusLeft:
		return StatusLeft
	case serf.StatusFailed:
		return StatusFailed
	default:
		return StatusNone
	}
}

// Member is one node as seen by Serf.
type Member struct {
	// Name is the node name (unique in the cluster).
	Name string
	// Addr is the node's gossip IP address.
	Addr string
	// Port is the node's gossip port.
	Port int
	// Status is the node's Serf state.
	Status MemberStatus
	// Tags are the node's tags, reserved and user ones.
	Tags map[string]string
}

func memberFromSerf(m serf.Member) Member {
	tags := make(map[string]string, len(m.Tags))
	for k, v := range m.Tags {
		tags[k] = v
	}
	return Member{
		Name:   m.Name,
		Addr:   m.Addr.String(),
		Port:   int(m.Port),
		Status: statusFromSerf(m.Status),
		Tags:   tags,
	}
}

// GossipAddr returns the member's Serf address as host:port, suitable for
// Agent.Join.
func (m Member) GossipAddr() string {
	return net.JoinHostPort(m.Addr, strconv.Itoa(m.Port))
}

// EventType is the kind of a membership change.
type EventType int

// Membership event types.
const (
	EventJoin EventType = iota + 1
	EventLeave
	EventFailed
	EventUpdate
	EventReap
)

// String returns the event name.
func (t EventType) String() string {
	switch t {
	case EventJoin:
		return "member-join"
	case EventLeave:
		return "member-leave"
	case EventFailed:
		return "member-failed"
	case EventUpdate:
		return "member-update"
	case EventReap:
		return "member-reap"
	default:
		return "unknown"
	}
}

func eventTypeFromSerf(t serf.EventType) (EventType, bool) {
	switch t {
	case serf.EventMemberJoin:
		return EventJoin, true
	case serf.EventMemberLeave:
		return EventLeave, true
	case serf.EventMemberFailed:
		return EventFailed, true
	case serf.EventMemberUpdate:
		return EventUpdate, true
	case serf.EventMemberReap:
		return EventReap, true
	default:
		return 0, false
	}
}

// MemberEvent is a membership change of one or more members.
type MemberEvent struct {
	Type    EventType
	Members []Member
}

// Server is a Corral server parsed from a Member's tags.
type Server struct {
	// Name is the Serf node name.
	Name string
	// ID is the node ID, also the raft ServerID.
	ID string
	// RaftAddr is the raft address (host:port).
	RaftAddr string
	// HTTPAddr is the HTTP API address (host:port); may be empty.
	HTTPAddr string
	// Expect is the node's bootstrap_expect (0 when unset or unparsable).
	Expect int
	// ExpectOK is false when the expect tag was missing or not a number.
	ExpectOK bool
	// Bootstrapped reports that the node's raft already has a configuration.
	Bootstrapped bool
	// Plugins are the plugin names the node runs.
	Plugins []string
	// Status is the member's Serf state.
	Status MemberStatus
	// Member is the member the server was parsed from.
	Member Member
}

// ParseServer reads a Corral server from a member's tags. It reports false
// for members that are not Corral servers (no role=server tag) or lack an
// id or raft tag.
func ParseServer(m Member) (Server, bool) {
	if m.Tags[TagRole] != RoleServer {
		return Server{}, false
	}
	id, raftAddr := m.Tags[TagID], m.Tags[TagRaft]
	if id == "" || raftAddr == "" {
		return Server{}, false
	}
	s := Server{
		Name:         m.Name,
		ID:           id,
		RaftAddr:     raftAddr,
		HTTPAddr:     m.Tags[TagHTTP],
		Bootstrapped: m.Tags[TagBootstrapped] == "1",
		Plugins:      splitPlugins(m.Tags[TagPlugins]),
		Status:       m.Status,
		Member:       m,
	}
	if v, ok := m.Tags[TagExpect]; ok {
		if n, err := strconv.Atoi(v); err == nil && n >= 0 {
			s.Expect, s.ExpectOK = n, true
		}
	}
	return s, true
}

func splitPlugins(v string) []string {
	if v == "" {
		return nil
	}
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func joinPlugins(plugins []string) string {
	ps := make([]string, 0, len(plugins))
	for _, p := range plugins {
		if p = strings.TrimSpace(p); p != "" {
			ps = append(ps, p)
		}
	}
	sort.Strings(ps)
	return strings.Join(ps, ",")
}
