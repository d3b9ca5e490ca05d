package acl

import "strings"

// Authorizer answers what one token may do. The zero value allows
// nothing; AllowAll allows everything (ACLs disabled, or a management
// token).
type Authorizer struct {
	all      bool
	queues   map[string]Level
	operator Level
	agent    Level
}

// AllowAll returns an authorizer that allows everything.
func AllowAll() *Authorizer { return &Authorizer{all: true} }

// NewAuthorizer merges policies into one authorizer: for the same queue
// prefix (and for operator and agent) deny wins, else the larger grant.
func NewAuthorizer(management bool, policies ...*Policy) *Authorizer {
	if management {
		return AllowAll()
	}
	a := &Authorizer{queues: map[string]Level{}}
	for _, p := range policies {
		for prefix, l := range p.Queues {
			a.queues[prefix] = combine(a.queues[prefix], l)
		}
		a.operator = combine(a.operator, p.Operator)
		a.agent = combine(a.agent, p.Agent)
	}
	return a
}

// Management reports whether the token may do everything (including
// managing ACLs).
func (a *Authorizer) Management() bool { return a.all }

// Queue returns the level granted on the named queue: the rule with the
// longest prefix of name decides; no rule is deny.
func (a *Authorizer) Queue(name string) Level {
	if a.all {
		return LevelWrite
	}
	best, level := -1, LevelNone
	for prefix, l := range a.queues {
		if len(prefix) > best && strings.HasPrefix(name, prefix) {
			best, level = len(prefix), l
		}
	}
	return level
}

// QueueRead reports whether the token may read jobs of the queue.
func (a *Authorizer) QueueRead(name string) bool { return allows(a.Queue(name), LevelRead) }

// QueueWrite reports whether the token may submit, cancel and retry jobs
// of the queue.
func (a *Authorizer) QueueWrite(name string) bool { return allows(a.Queue(name), LevelWrite) }

// OperatorRead reports whether the token may read the raft configuration.
func (a *Authorizer) OperatorRead() bool { return a.all || allows(a.operator, LevelRead) }

// OperatorWrite reports whether the token may remove raft peers and pause
// or resume queues.
func (a *Authorizer) OperatorWrite() bool { return a.all || allows(a.operator, LevelWrite) }

// AgentRead reports whether the token may read the agent's state, members,
// plugins and metrics.
func (a *Authorizer) AgentRead() bool { return a.all || allows(a.agent, LevelRead) }

// AgentWrite reports whether the token may make the agent leave.
func (a *Authorizer) AgentWrite() bool { return a.all || allows(a.agent, LevelWrite) }

// allows reports whether a granted level covers the wanted one.
func allows(granted, want Level) bool { return granted != LevelDeny && granted >= want }
