package builtin

import (
	"slices"
	"testing"
)

// TestExecEnvAllowlist: a command gets only the allowlisted variables of
// the agent's environment (plus pass_env and the job's env), never a
// secret the agent happens to hold or go-plugin's handshake variables.
func TestExecEnvAllowlist(t *testing.T) {
	agent := []string{
		"PATH=/usr/bin", "HOME=/root", "LANG=C.UTF-8", "TZ=UTC",
		"AWS_SECRET_ACCESS_KEY=hunter2", "CORRAL_TOKEN=secret", "CORRAL_PLUGIN=cookie", "PLUGIN_CLIENT_CERT=pem",
		"EXTRA=kept",
	}
	got := childEnv(agent, []string{"EXTRA"}, map[string]string{"JOB": "1"})
	want := []string{"PATH=/usr/bin", "HOME=/root", "LANG=C.UTF-8", "TZ=UTC", "EXTRA=kept", "JOB=1"}
	if !slices.Equal(got, want) {
		t.Fatalf("env %q, want %q", got, want)
	}
}

// TestExecUserConfig: an unknown user is a config error naming it; a
// known one resolves to its uid.
func TestExecUserConfig(t *testing.T) {
	w := &execWorker{}
	if err := w.Configure([]byte(`{"user": "no-such-user-corral"}`)); err == nil {
		t.Fatalf("unknown user accepted")
	}
	if err := w.Configure([]byte(`{"user": "0"}`)); err != nil {
		t.Fatalf("uid 0: %v", err)
	}
	if w.cfg.cred == nil || w.cfg.cred.Uid != 0 {
		t.Fatalf("credential %+v, want uid 0", w.cfg.cred)
	}
}
