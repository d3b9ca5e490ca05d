package httpapi

import (
	"fmt"
	"math"
	"net/http"
	"time"

	"github.com/corral-dev/corral/daemon/api"
	"github.com/corral-dev/corral/queue"
)

// handleQueueRate serves PUT /v1/queues/{name}/rate: set or (rate "0")
// remove a queue's rate limit.
func (h *API) handleQueueRate(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := checkQueueName(name); err != nil {
		writeError(w, err)
		return
	}
	var body api.QueueRate
	if err := decodeBody(w, r, 4<<10, &body); err != nil {
		writeError(w, err)
		return
	}
	rate, err := queue.ParseRate(body.Rate)
	if err != nil {
		writeError(w, badRequest("rate %q: want N/s, N/m or N/h with N in 1-%d, such as \"100/s\" (or \"0\" to remove the limit)", truncate(body.Rate, 64), queue.MaxRateCount))
		return
	}
	switch {
	case rate.IsZero() && body.Burst != 0:
		writeError(w, badRequest("burst %d without a rate: set a rate such as \"100/s\" as well", body.Burst))
		return
	case !rate.IsZero() && (body.Burst < 0 || body.Burst > queue.MaxRateBurst):
		writeError(w, badRequest("burst %d must be 1-%d (default 1)", body.Burst, queue.MaxRateBurst))
		return
	case !rate.IsZero():
		rate.Burst = max(body.Burst, 1)
	}
	if !h.queueExists(name) {
		writeError(w, queueNotFound(name))
		return
	}
	res, index, err := h.writer.Write(r.Context(), &queue.SetQueueRate{Name: name, Rate: rate})
	if err == nil {
		err = res.Err
	}
	if err != nil {
		writeError(w, fmt.Errorf("queue %s: %w", name, err))
		return
	}
	// The answer names the limit set; this node's replica may not have
	// applied it yet, so the bucket is left out (see GET /v1/queues).
	writeJSON(w, http.StatusOK, api.Queue{Name: name, Rate: rate.String(), Burst: rate.Burst}, index)
}

// addRate shows a queue's rate limit and its bucket at now.
func addRate(out *api.Queue, rl *queue.RateLimit, now time.Time) {
	if rl == nil {
		return
	}
	out.Rate, out.Burst = rl.String(), rl.Burst
	tokens := math.Floor(rl.Tokens(now)*1000) / 1000
	out.Tokens = &tokens
	if next := rl.NextToken(now); next.After(now) {
		out.NextToken = next.UTC()
	}
}

// rateLimited explains a queue whose rate limit holds its jobs back at
// now ("" when its bucket has a token or it has no limit).
func rateLimited(q queue.QueueInfo, now time.Time) string {
	if q.Rate == nil || q.Rate.Tokens(now) >= 1 {
		return ""
	}
	wait := q.Rate.NextToken(now).Sub(now)
	return fmt.Sprintf("queue %q is rate limited (%s, burst %d): next token in %s", q.Name, q.Rate, q.Rate.Burst, roundWait(wait))
}

// roundWait shortens a wait for display: milliseconds below a minute,
// seconds above.
func roundWait(d time.Duration) time.Duration {
	if d < time.Minute {
		return max(d.Round(time.Millisecond), time.Millisecond)
	}
	return d.Round(time.Second)
}
