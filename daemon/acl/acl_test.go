package acl

import (
	"errors"
	"testing"

	"github.com/corral-dev/corral/queue"
)

func mustParse(t *testing.T, rules string) *Policy {
	t.Helper()
	p, err := Parse("test", rules)
	if err != nil {
		t.Fatalf("parse %q: %v", rules, err)
	}
	return p
}

// TestQueuePrefixMatching: a rule covers every queue whose name starts
// with its prefix; "" covers all; no rule is deny.
func TestQueuePrefixMatching(t *testing.T) {
	a := NewAuthorizer(false, mustParse(t, `
queue "billing-" { policy = "write" }
queue "reports" { policy = "read" }
`))
	for _, tc := range []struct {
		queue       string
		read, write bool
	}{
		{"billing-eu", true, true},
		{"billing-", true, true},
		{"billing", false, false},
		{"reports", true, false},
		{"reports-daily", true, false},
		{"default", false, false},
	} {
		if got := a.QueueRead(tc.queue); got != tc.read {
			t.Errorf("read %q = %v, want %v", tc.queue, got, tc.read)
		}
		if got := a.QueueWrite(tc.queue); got != tc.write {
			t.Errorf("write %q = %v, want %v", tc.queue, got, tc.write)
		}
	}
	all := NewAuthorizer(false, mustParse(t, `queue "" { policy = "read" }`))
	if !all.QueueRead("anything") || all.QueueWrite("anything") {
		t.Errorf(`queue "" read: read %v write %v, want read only`, all.QueueRead("anything"), all.QueueWrite("anything"))
	}
}

// TestMostSpecificWins: the longest matching prefix decides, whether it
// grants more or less than a shorter one.
func TestMostSpecificWins(t *testing.T) {
	a := NewAuthorizer(false, mustParse(t, `
queue "" { policy = "write" }
queue "secret" { policy = "deny" }
queue "secret-public" { policy = "read" }
`))
	for _, tc := range []struct {
		queue string
		want  Level
	}{
		{"default", LevelWrite},
		{"secret", LevelDeny},
		{"secret-x", LevelDeny},
		{"secret-public", LevelRead},
		{"secret-public-2", LevelRead},
	} {
		if got := a.Queue(tc.queue); got != tc.want {
			t.Errorf("queue %q: %s, want %s", tc.queue, got, tc.want)
		}
	}
}

// TestDenyWinsAtEqualSpecificity: two policies with the same prefix, one
// write and one deny: deny; the same for operator and agent.
func TestDenyWinsAtEqualSpecificity(t *testing.T) {
	w := mustParse(t, "queue \"jobs\" { policy = \"write\" }\noperator = \"write\"\nagent = \"write\"")
	d := mustParse(t, "queue \"jobs\" { policy = \"deny\" }\noperator = \"deny\"\nagent = \"deny\"")
	for _, order := range [][]*Policy{{w, d}, {d, w}} {
		a := NewAuthorizer(false, order...)
		if a.QueueRead("jobs") || a.QueueWrite("jobs") || a.OperatorRead() || a.AgentRead() {
			t.Fatalf("deny did not win at equal specificity: queue %s", a.Queue("jobs"))
		}
	}
	// Without the deny, the larger grant of two policies wins.
	r := mustParse(t, "queue \"jobs\" { policy = \"read\" }")
	if a := NewAuthorizer(false, r, w); !a.QueueWrite("jobs") {
		t.Fatalf("read + write on the same prefix: %s, want write", a.Queue("jobs"))
	}
}

// TestManagementAndDefaultDeny: management may do everything; a token
// without policies nothing; operator and agent levels are separate.
func TestManagementAndDefaultDeny(t *testing.T) {
	m := NewAuthorizer(true)
	if !m.Management() || !m.QueueWrite("x") || !m.OperatorWrite() || !m.AgentWrite() {
		t.Fatalf("management token is not allowed everything")
	}
	none := NewAuthorizer(false)
	if none.Management() || none.QueueRead("x") || none.OperatorRead() || none.AgentRead() {
		t.Fatalf("token without policies is allowed something")
	}
	ops := NewAuthorizer(false, mustParse(t, "operator = \"read\"\nagent = \"write\""))
	if !ops.OperatorRead() || ops.OperatorWrite() || !ops.AgentWrite() || ops.QueueRead("default") {
		t.Fatalf("operator read + agent write: got operator write %v, agent write %v, queue read %v", ops.OperatorWrite(), ops.AgentWrite(), ops.QueueRead("default"))
	}
}

// TestParseErrors: bad levels, unknown keys and duplicate prefixes are
// refused with ErrBadPolicy.
func TestParseErrors(t *testing.T) {
	for _, rules := range []string{
		`queue "a" { policy = "admin" }`,
		`operator = "all"`,
		`nodes = "read"`,
		"queue \"a\" { policy = \"read\" }\nqueue \"a\" { policy = \"write\" }",
		`queue "a" {`,
	} {
		if _, err := Parse("p", rules); !errors.Is(err, ErrBadPolicy) {
			t.Errorf("rules %q: %v, want ErrBadPolicy", rules, err)
		}
	}
}

type fakeStore struct {
	tokens   map[string]*queue.ACLToken
	policies map[string]*queue.ACLPolicy
}

func (f fakeStore) ACLTokenBySecretHash(h string) (*queue.ACLToken, bool) {
	t, ok := f.tokens[h]
	return t, ok
}
func (f fakeStore) ACLPolicy(n string) (*queue.ACLPolicy, bool) { p, ok := f.policies[n]; return p, ok }

// TestResolver: secrets resolve through their hash; an unknown secret is
// ErrTokenNotFound; a changed policy is re-read.
func TestResolver(t *testing.T) {
	st := fakeStore{tokens: map[string]*queue.ACLToken{
		HashSecret("root"): {AccessorID: "r", Management: true},
		HashSecret("dev"):  {AccessorID: "d", Policies: []string{"dev", "gone"}},
	}, policies: map[string]*queue.ACLPolicy{"dev": {Name: "dev", Rules: `queue "a" { policy = "write" }`, ModifyIndex: 1}}}
	r := NewResolver(st)
	if a, id, err := r.Resolve("root"); err != nil || id != "r" || !a.Management() {
		t.Fatalf("root: %v %s %v", a, id, err)
	}
	if _, _, err := r.Resolve("nope"); !errors.Is(err, ErrTokenNotFound) {
		t.Fatalf("unknown secret: %v", err)
	}
	a, _, _ := r.Resolve("dev")
	if !a.QueueWrite("a") || a.QueueRead("b") {
		t.Fatalf("dev token: a=%s b=%s", a.Queue("a"), a.Queue("b"))
	}
	st.policies["dev"] = &queue.ACLPolicy{Name: "dev", Rules: `queue "b" { policy = "read" }`, ModifyIndex: 2}
	a, _, _ = r.Resolve("dev")
	if a.QueueRead("a") || !a.QueueRead("b") {
		t.Fatalf("changed policy not re-read: a=%s b=%s", a.Queue("a"), a.Queue("b"))
	}
}
