package main

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/corral-dev/corral/plugins/sdk/sdktest"
)

// TestUpper runs the plugin in-process and as its built binary, through the
// go-plugin path the agent uses, under each protocol version.
func TestUpper(t *testing.T) {
	bin := sdktest.Build(t, ".")
	for name, start := range map[string]func(t *testing.T, v int) *sdktest.Plugin{
		"in-process": func(t *testing.T, v int) *sdktest.Plugin {
			return sdktest.Serve(t, upper{}, sdktest.Options{APIVersions: []int{v}})
		},
		"binary": func(t *testing.T, v int) *sdktest.Plugin {
			return sdktest.Exec(t, bin, nil, sdktest.Options{APIVersions: []int{v}})
		},
	} {
		for _, v := range []int{1, 2} {
			t.Run(fmt.Sprintf("%s/v%d", name, v), func(t *testing.T) {
				p := start(t, v)
				if info := p.Info(); info.Name != "upper" || info.Version != "1.0.0" || p.APIVersion() != v {
					t.Fatalf("Info = %+v, protocol version %d; want upper 1.0.0 over version %d", info, p.APIVersion(), v)
				}
				out := p.Run(context.Background(), sdktest.Request{Payload: []byte("hello")})
				if out.Err != nil || string(out.Result) != "HELLO" {
					t.Fatalf("Run = %q, %v", out.Result, out.Err)
				}
				if lines := out.Lines(); !slices.Equal(lines, []string{"upper-casing 5 bytes"}) {
					t.Errorf("log = %q", lines)
				}
				if len(out.Progress) != 1 || out.Progress[0].Percent != 50 || out.Progress[0].Message != "working" {
					t.Errorf("progress = %+v", out.Progress)
				}
			})
		}
	}
}
