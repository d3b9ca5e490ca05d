package httpapi

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/corral-dev/corral/queue"
)

// FuzzSubmitBody feeds arbitrary bytes through the API's submit decoding:
// it must never panic, and every request it accepts must encode into a
// command that decodes to the same specs.
func FuzzSubmitBody(f *testing.F) {
	for _, seed := range []string{
		`{"plugin":"echo","payload":{"echo":"hi"}}`,
		`{"plugin":"exec","payload":{"command":["true"]},"queue":"q","priority":5,"delay":"1m","unique_key":"k","constraints":{"zone":"a"}}`,
		`{"jobs":[{"plugin":"echo"},{"plugin":"echo","payload":"text","max_attempts":3,"timeout":"10s"}]}`,
		`{"plugin":"echo","run_at":"2030-01-01T00:00:00Z","unique_for":1000000000}`,
		`{"plugin":""}`, `[]`, `{"jobs":null}`, `{"plugin":"echo","delay":"-1s"}`,
	} {
		f.Add([]byte(seed))
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte) {
		var body submitBody
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if dec.Decode(&body) != nil {
			return
		}
		reqs := body.Jobs
		if reqs == nil {
			reqs = append(reqs, body.JobRequest)
		}
		cmd := &queue.Submit{}
		for i := range reqs {
			spec, err := specFromRequest(&reqs[i], now)
			if err != nil || queue.ValidateSpec(&spec) != nil {
				return
			}
			cmd.IDs = append(cmd.IDs, "01HZZZZZZZZZZZZZZZZZZZZZZZ")
			cmd.Specs = append(cmd.Specs, spec)
		}
		data, err := queue.Encode(queue.Entry{Now: now, Cmds: []queue.Command{cmd}})
		if err != nil {
			t.Fatalf("valid request does not encode: %v", err)
		}
		e, err := queue.Decode(data)
		if err != nil {
			t.Fatalf("encoded request does not decode: %v", err)
		}
		got := e.Cmds[0].(*queue.Submit)
		if len(got.Specs) != len(cmd.Specs) {
			t.Fatalf("specs: got %d, want %d", len(got.Specs), len(cmd.Specs))
		}
		for i := range got.Specs {
			if got.Specs[i].Plugin != cmd.Specs[i].Plugin || !bytes.Equal(got.Specs[i].Payload, cmd.Specs[i].Payload) ||
				!got.Specs[i].RunAt.Equal(cmd.Specs[i].RunAt) || got.Specs[i].Priority != cmd.Specs[i].Priority {
				t.Fatalf("spec %d changed in the round trip: %+v vs %+v", i, got.Specs[i], cmd.Specs[i])
			}
		}
	})
}
