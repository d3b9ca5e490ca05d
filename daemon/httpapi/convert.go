package httpapi

import (
	"encoding/json"
	"time"

	"github.com/corral-dev/corral/daemon/api"
	"github.com/corral-dev/corral/queue"
)

// minTimeout is the shortest per-attempt timeout a job may ask for.
const minTimeout = time.Millisecond

// specFromRequest turns an API job request into a queue spec. now turns a
// relative delay into an absolute RunAt before replication.
func specFromRequest(r *api.JobRequest, now time.Time) (queue.Spec, error) {
	if r.Plugin == "" {
		return queue.Spec{}, badRequest("job has no plugin: set \"plugin\" (e.g. \"echo\", \"exec\")")
	}
	if r.Delay < 0 {
		return queue.Spec{}, badRequest("delay %s is negative", time.Duration(r.Delay))
	}
	if t := time.Duration(r.Timeout); t != 0 && t < minTimeout {
		// A JSON number is nanoseconds: "timeout": 30 is 30ns, which no
		// plugin call can honour and must never round down to "none".
		return queue.Spec{}, badRequest("timeout %s is below the %s minimum: write a duration string such as \"30s\" or \"5m\"", t, minTimeout)
	}
	if r.Delay > 0 && r.RunAt != nil {
		return queue.Spec{}, badRequest("set either delay or run_at, not both")
	}
	spec := queue.Spec{
		Queue:       r.Queue,
		Plugin:      r.Plugin,
		Payload:     payloadBytes(r.Payload),
		Priority:    r.Priority,
		MaxAttempts: r.MaxAttempts,
		Timeout:     time.Duration(r.Timeout),
		UniqueKey:   r.UniqueKey,
		UniqueFor:   time.Duration(r.UniqueFor),
		Constraints: r.Constraints,
	}
	switch {
	case r.RunAt != nil:
		spec.RunAt = r.RunAt.UTC()
	case r.Delay > 0:
		spec.RunAt = now.Add(time.Duration(r.Delay))
	}
	return spec, nil
}

// payloadBytes is what the plugin receives: a JSON string payload is
// unwrapped to its text, any other JSON value is passed as written.
func payloadBytes(raw json.RawMessage) []byte {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var s string
	if raw[0] == '"' && json.Unmarshal(raw, &s) == nil {
		return []byte(s)
	}
	return append([]byte(nil), raw...)
}

// displayBytes shows bytes as JSON when they are JSON, else as a string.
func displayBytes(b []byte) json.RawMessage {
	if len(b) == 0 {
		return nil
	}
	if json.Valid(b) {
		return json.RawMessage(b)
	}
	return api.JSONString(string(b))
}

// toAPIJob converts a stored job for the API.
func toAPIJob(j *queue.Job) api.Job {
	out := api.Job{
		ID:              j.ID,
		Queue:           j.Queue,
		Plugin:          j.Plugin,
		Payload:         displayBytes(j.Payload),
		Priority:        j.Priority,
		MaxAttempts:     j.MaxAttempts,
		Timeout:         api.Duration(j.Timeout),
		RunAt:           j.RunAt,
		UniqueKey:       j.UniqueKey,
		UniqueFor:       api.Duration(j.UniqueFor),
		Constraints:     j.Constraints,
		Parents:         j.DependsOn,
		State:           j.State.String(),
		Attempt:         j.Attempt,
		Node:            j.Node,
		Token:           j.Token,
		LeaseExpiresAt:  j.LeaseExpiresAt,
		CancelRequested: j.CancelRequested,
		Result:          displayBytes(j.Result),
		Error:           j.Error,
		CreatedAt:       j.CreatedAt,
		UpdatedAt:       j.UpdatedAt,
		FinishedAt:      j.FinishedAt,
	}
	if len(j.Attempts) > 0 {
		out.Attempts = make([]api.Attempt, len(j.Attempts))
		for i, at := range j.Attempts {
			out.Attempts[i] = api.Attempt{
				Attempt: at.Attempt, Node: at.Node, Token: at.Token,
				Started: at.Started, Finished: at.Finished, Error: at.Error,
			}
			if at.Outcome != queue.OutcomeInvalid {
				out.Attempts[i].Outcome = at.Outcome.String()
			}
		}
	}
	return out
}
