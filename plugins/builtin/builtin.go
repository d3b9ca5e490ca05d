// Package builtin holds the worker plugins that ship inside the corral
// binary: exec, http and echo. The daemon re-executes itself as
// `corral plugin serve NAME`, whose main calls Serve, so built-ins go through
// the same go-plugin path as external plugins.
package builtin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/corral-dev/corral/plugins/sdk"
)

// Version is the version the built-in plugins report.
const Version = "0.1.0"

// ErrUnknown is returned by Serve for a name that is not a built-in plugin.
var ErrUnknown = errors.New("unknown built-in plugin")

// workers maps each built-in's name to its constructor.
var workers = map[string]func() sdk.Worker{
	"echo": func() sdk.Worker { return &echoWorker{} },
	"exec": func() sdk.Worker { return &execWorker{} },
	"http": func() sdk.Worker { return &httpWorker{} },
}

// Names returns the built-in plugin names, sorted.
func Names() []string {
	names := make([]string, 0, len(workers))
	for name := range workers {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// Serve serves the named built-in plugin over the SDK. It only returns, with
// ErrUnknown, when name is not a built-in; otherwise the process exits when
// the host is done with the plugin.
func Serve(name string) error {
	newWorker, ok := workers[name]
	if !ok {
		return fmt.Errorf("%w %q (built-ins: %s)", ErrUnknown, name, strings.Join(Names(), ", "))
	}
	sdk.Serve(newWorker())
	return nil
}

// decodePayload decodes a JSON payload strictly into v. An empty payload
// leaves v unchanged. Errors are non-retryable: the same payload would fail
// the same way on every attempt.
func decodePayload(raw []byte, v any) error {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return sdk.NonRetryable(fmt.Errorf("invalid payload: %w", err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return sdk.NonRetryable(errors.New("invalid payload: unexpected data after the JSON object"))
	}
	return nil
}
