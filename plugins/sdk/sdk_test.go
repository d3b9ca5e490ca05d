package sdk

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestDecodeConfig(t *testing.T) {
	type cfg struct {
		Allowed []string `json:"allowed"`
		Limit   int      `json:"limit"`
	}
	for _, tc := range []struct {
		raw     string
		want    cfg
		wantErr string
	}{
		{raw: "", want: cfg{Limit: 7}},
		{raw: " {} ", want: cfg{Limit: 7}},
		{raw: `{"allowed": ["a"], "limit": 2}`, want: cfg{Allowed: []string{"a"}, Limit: 2}},
		{raw: `{"alowed": ["a"]}`, wantErr: `invalid config: unknown key "alowed"`},
		{raw: `{"limit": "two"}`, wantErr: `invalid config: key "limit": expected int, got string`},
		{raw: `{"limit": 1} {}`, wantErr: "unexpected data after the config object"},
		{raw: `{"limit": `, wantErr: "invalid config"},
	} {
		got := cfg{Limit: 7}
		err := DecodeConfig([]byte(tc.raw), &got)
		switch {
		case tc.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%q: err = %v, want %q", tc.raw, err, tc.wantErr)
			}
		case err != nil:
			t.Errorf("%q: %v", tc.raw, err)
		case fmt.Sprint(got) != fmt.Sprint(tc.want):
			t.Errorf("%q: got %+v, want %+v", tc.raw, got, tc.want)
		}
	}
}

func TestNonRetryable(t *testing.T) {
	base := errors.New("bad payload")
	err := fmt.Errorf("job 1: %w", NonRetryable(base))
	if !IsNonRetryable(err) || !errors.Is(err, base) || err.Error() != "job 1: bad payload" {
		t.Errorf("wrapped non-retryable: %v", err)
	}
	if IsNonRetryable(base) || NonRetryable(nil) != nil {
		t.Error("plain errors must stay retryable; NonRetryable(nil) must be nil")
	}
}
