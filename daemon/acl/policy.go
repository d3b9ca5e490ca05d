// Package acl parses ACL policies and answers what a token may do
// (DESIGN §10): queue rules by name prefix (read, write, deny), an
// operator rule and an agent rule. The most specific queue prefix wins;
// at equal specificity, deny wins. Without a matching rule, nothing is
// allowed (default deny). A management token may do everything.
package acl

import (
	"errors"
	"fmt"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// ErrBadPolicy means a policy's rules do not parse; it is wrapped with the
// position and the problem.
var ErrBadPolicy = errors.New("invalid policy rules")

// Level is what a rule grants. The zero value means "no rule".
type Level uint8

// Levels, in increasing order of grant (deny is a rule that refuses).
const (
	LevelNone Level = iota
	LevelDeny
	LevelRead
	LevelWrite
)

// String returns the level as written in rules.
func (l Level) String() string {
	switch l {
	case LevelDeny:
		return "deny"
	case LevelRead:
		return "read"
	case LevelWrite:
		return "write"
	}
	return "none"
}

// parseLevel reads "read", "write" or "deny".
func parseLevel(s string) (Level, error) {
	switch s {
	case "deny":
		return LevelDeny, nil
	case "read":
		return LevelRead, nil
	case "write":
		return LevelWrite, nil
	}
	return LevelNone, fmt.Errorf("%q is not a policy: use \"read\", \"write\" or \"deny\"", s)
}

// combine merges two rules for the same thing: deny wins, else the larger
// grant.
func combine(a, b Level) Level {
	if a == LevelDeny || b == LevelDeny {
		return LevelDeny
	}
	return max(a, b)
}

// Policy is a parsed policy.
type Policy struct {
	// Queues maps a queue name prefix to its level ("" matches every
	// queue).
	Queues   map[string]Level
	Operator Level
	Agent    Level
}

// rulesFile is the HCL schema of a policy's rules.
type rulesFile struct {
	Queues []struct {
		Prefix string `hcl:"prefix,label"`
		Policy string `hcl:"policy"`
	} `hcl:"queue,block"`
	Operator *string `hcl:"operator,optional"`
	Agent    *string `hcl:"agent,optional"`
}

// Parse parses a policy's HCL rules:
//
//	queue "" { policy = "read" }          # every queue
//	queue "billing-" { policy = "write" }  # queues starting with billing-
//	operator = "read"                      # raft peers, queue pause/resume
//	agent = "write"                        # leave, plugins, metrics
//
// Errors wrap ErrBadPolicy and name the line.
func Parse(name, rules string) (*Policy, error) {
	f, diags := hclsyntax.ParseConfig([]byte(rules), name+".hcl", hcl.InitialPos)
	if diags.HasErrors() {
		return nil, fmt.Errorf("%w: %s", ErrBadPolicy, diags.Error())
	}
	var rf rulesFile
	if diags := gohcl.DecodeBody(f.Body, nil, &rf); diags.HasErrors() {
		return nil, fmt.Errorf("%w: %s", ErrBadPolicy, diags.Error())
	}
	p := &Policy{Queues: map[string]Level{}}
	for _, q := range rf.Queues {
		l, err := parseLevel(q.Policy)
		if err != nil {
			return nil, fmt.Errorf("%w: queue %q: %v", ErrBadPolicy, q.Prefix, err)
		}
		if _, dup := p.Queues[q.Prefix]; dup {
			return nil, fmt.Errorf("%w: queue %q appears twice", ErrBadPolicy, q.Prefix)
		}
		p.Queues[q.Prefix] = l
	}
	for _, r := range []struct {
		key string
		val *string
		out *Level
	}{{"operator", rf.Operator, &p.Operator}, {"agent", rf.Agent, &p.Agent}} {
		if r.val == nil {
			continue
		}
		l, err := parseLevel(*r.val)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrBadPolicy, r.key, err)
		}
		*r.out = l
	}
	return p, nil
}
