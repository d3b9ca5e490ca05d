// Command upper is an example Corral worker plugin: it upper-cases its payload.
// Install it by copying the binary into the agent's plugin_dir.
package main

import (
	"bytes"
	"context"

	"github.com/corral-dev/corral/plugins/sdk"
)

type upper struct{}

func (upper) Info() sdk.Info {
	return sdk.Info{Name: "upper", Version: "1.0.0", Description: "upper-cases the payload"}
}

func (upper) Run(ctx context.Context, job sdk.Job, r sdk.Reporter) ([]byte, error) {
	r.Logf("upper-casing %d bytes", len(job.Payload))
	r.Progress(50, "working")
	return bytes.ToUpper(job.Payload), nil
}

func main() { sdk.Serve(upper{}) }
