package discovery

import (
	"errors"
	"slices"
	"testing"
	"time"
)

func newTestAgent(t *testing.T, name string, mod func(*AgentConfig)) *Agent {
	t.Helper()
	cfg := AgentConfig{
		NodeName: name,
		NodeID:   "id-" + name,
		BindAddr: "127.0.0.1",
		RaftAddr: "127.0.0.1:4781",
		HTTPAddr: "127.0.0.1:4780",
		Tags:     map[string]string{"zone": "a"},
		Plugins:  []string{"exec", "echo"},
		Logger:   testLogger(name),
		Fast:     true,
	}
	if mod != nil {
		mod(&cfg)
	}
	a, err := NewAgent(cfg)
	if err != nil {
		t.Fatalf("new agent %s: %v", name, err)
	}
	t.Cleanup(func() { _ = a.Shutdown() })
	return a
}

func memberNamed(a *Agent, name string) (Member, bool) {
	for _, m := range a.Members() {
		if m.Name == name {
			return m, true
		}
	}
	return Member{}, false
}

func TestAgentAdvertisesTagsAndPluginUpdates(t *testing.T) {
	a := newTestAgent(t, "a", nil)
	b := newTestAgent(t, "b", func(c *AgentConfig) { c.BootstrapExpect = 3 })
	if _, err := b.Join([]string{a.LocalMember().GossipAddr()}); err != nil {
		t.Fatalf("join: %v", err)
	}
	var srv Server
	waitFor(t, 5*time.Second, "b's tags seen by a", func() bool {
		m, ok := memberNamed(a, "b")
		if !ok {
			return false
		}
		srv, ok = ParseServer(m)
		return ok
	})
	if srv.ID != "id-b" || srv.RaftAddr != "127.0.0.1:4781" || srv.HTTPAddr != "127.0.0.1:4780" ||
		srv.Expect != 3 || !srv.ExpectOK || srv.Bootstrapped || srv.Status != StatusAlive ||
		!slices.Equal(srv.Plugins, []string{"echo", "exec"}) || srv.Member.Tags["zone"] != "a" {
		t.Fatalf("parsed server = %+v", srv)
	}

	if err := b.SetPlugins([]string{"http"}); err != nil {
		t.Fatalf("set plugins: %v", err)
	}
	waitFor(t, 5*time.Second, "plugin update seen by a", func() bool {
		m, _ := memberNamed(a, "b")
		return m.Tags[TagPlugins] == "http"
	})
}

func TestAgentEventsReportJoinAndFailure(t *testing.T) {
	a := newTestAgent(t, "a", nil)
	b := newTestAgent(t, "b", nil)
	if _, err := b.Join([]string{a.LocalMember().GossipAddr()}); err != nil {
		t.Fatalf("join: %v", err)
	}
	want := []EventType{EventJoin, EventFailed}
	deadline := time.After(10 * time.Second)
	for len(want) > 0 {
		select {
		case ev := <-a.Events():
			if ev.Type == want[0] && slices.ContainsFunc(ev.Members, func(m Member) bool { return m.Name == "b" }) {
				want = want[1:]
				if len(want) == 1 {
					_ = b.Shutdown() // no leave: a must see b fail
				}
			}
		case <-deadline:
			t.Fatalf("timed out waiting for %v", want)
		}
	}
	m, _ := memberNamed(a, "b")
	if m.Status != StatusFailed {
		t.Fatalf("status = %s, want failed", m.Status)
	}
}

func TestAgentEncryptionKeyMustMatch(t *testing.T) {
	k1, err := Keygen()
	if err != nil {
		t.Fatal(err)
	}
	k2, _ := Keygen()
	key1, _ := DecodeKey(k1)
	key2, _ := DecodeKey(k2)
	a := newTestAgent(t, "a", func(c *AgentConfig) { c.EncryptKey = key1 })
	b := newTestAgent(t, "b", func(c *AgentConfig) { c.EncryptKey = key1 })
	x := newTestAgent(t, "x", func(c *AgentConfig) { c.EncryptKey = key2 })

	if _, err := b.Join([]string{a.LocalMember().GossipAddr()}); err != nil {
		t.Fatalf("join with the same key: %v", err)
	}
	if _, err := x.Join([]string{a.LocalMember().GossipAddr()}); err == nil {
		t.Fatal("join with a different key succeeded")
	}
	if _, ok := memberNamed(a, "x"); ok {
		t.Fatal("node with a different key became a member")
	}
}

func TestAgentRetryJoin(t *testing.T) {
	a := newTestAgent(t, "a", nil)
	b := newTestAgent(t, "b", func(c *AgentConfig) {
		// The first address refuses connections; the retry keeps going
		// until the join succeeds.
		c.RetryJoin = []string{"127.0.0.1:1", a.LocalMember().GossipAddr()}
		c.RetryInterval = 100 * time.Millisecond
	})
	waitFor(t, 5*time.Second, "b to join a by retry_join", func() bool {
		m, ok := memberNamed(a, b.LocalMember().Name)
		return ok && m.Status == StatusAlive
	})
}

func TestAgentConfigValidate(t *testing.T) {
	base := AgentConfig{NodeName: "n", NodeID: "id", RaftAddr: "127.0.0.1:4781"}
	cases := []struct {
		name string
		mod  func(*AgentConfig)
		want error
	}{
		{"ok", func(*AgentConfig) {}, nil},
		{"no name", func(c *AgentConfig) { c.NodeName = "" }, ErrInvalidConfig},
		{"no id", func(c *AgentConfig) { c.NodeID = "" }, ErrInvalidConfig},
		{"bad raft addr", func(c *AgentConfig) { c.RaftAddr = "nope" }, ErrInvalidConfig},
		{"bad port", func(c *AgentConfig) { c.BindPort = 70000 }, ErrInvalidConfig},
		{"reserved tag", func(c *AgentConfig) { c.Tags = map[string]string{"raft": "x"} }, ErrReservedTag},
		{"short key", func(c *AgentConfig) { c.EncryptKey = []byte("short") }, ErrInvalidKey},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := base
			tc.mod(&c)
			err := c.Validate()
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("Validate() = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestKeygenAndDecodeKey(t *testing.T) {
	k, err := Keygen()
	if err != nil {
		t.Fatal(err)
	}
	key, err := DecodeKey(k)
	if err != nil || len(key) != KeySize {
		t.Fatalf("DecodeKey(Keygen()) = %d bytes, %v", len(key), err)
	}
	if k2, _ := Keygen(); k2 == k {
		t.Fatal("two keys are equal")
	}
	for _, bad := range []string{"not base64!", "c2hvcnQ="} {
		if _, err := DecodeKey(bad); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("DecodeKey(%q) = %v, want ErrInvalidKey", bad, err)
		}
	}
}
