package api

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// PeriodicRequest defines a periodic job (PUT /v1/periodic/{name}). Job
// is the template of every job it makes (delay and run_at must be unset).
type PeriodicRequest struct {
	Cron     string     `json:"cron"`
	Timezone string     `json:"timezone,omitempty"`
	Overlap  string     `json:"overlap,omitempty"`
	CatchUp  bool       `json:"catch_up,omitempty"`
	Job      JobRequest `json:"job"`
}

// Periodic is a periodic job as the API shows it.
type Periodic struct {
	Name     string     `json:"name"`
	Cron     string     `json:"cron"`
	Timezone string     `json:"timezone,omitempty"`
	Overlap  string     `json:"overlap"`
	CatchUp  bool       `json:"catch_up"`
	Job      JobRequest `json:"job"`
	// Next is the next tick to fire (already due when in the past).
	Next time.Time `json:"next,omitzero"`
	// LastTick is the last scheduled tick fired.
	LastTick time.Time `json:"last_tick,omitzero"`
	// LastJob is the job of the last firing.
	LastJob   string    `json:"last_job,omitempty"`
	Fired     uint64    `json:"fired"`
	Skipped   uint64    `json:"skipped"`
	CreatedAt time.Time `json:"created_at"`
}

// PeriodicList answers GET /v1/periodic.
type PeriodicList struct {
	Periodics []Periodic `json:"periodics"`
	Index     uint64     `json:"index"`
}

// PeriodicRun answers POST /v1/periodic/{name}/run: the job it made.
type PeriodicRun struct {
	ID    string `json:"id"`
	Index uint64 `json:"index"`
}

func periodicPath(name string) string { return "/v1/periodic/" + url.PathEscape(name) }

// Periodics lists the periodic jobs (GET /v1/periodic).
func (c *Client) Periodics(ctx context.Context) (*PeriodicList, error) {
	var out PeriodicList
	if _, err := c.call(ctx, request{method: http.MethodGet, path: "/v1/periodic"}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ApplyPeriodic creates or replaces a periodic job (PUT
// /v1/periodic/{name}); a replaced one keeps its last fired tick.
func (c *Client) ApplyPeriodic(ctx context.Context, name string, p PeriodicRequest) (*Periodic, error) {
	var out Periodic
	if _, err := c.call(ctx, request{method: http.MethodPut, path: periodicPath(name), body: p}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeletePeriodic removes a periodic job (DELETE /v1/periodic/{name}); the
// jobs it made stay.
func (c *Client) DeletePeriodic(ctx context.Context, name string) error {
	_, err := c.call(ctx, request{method: http.MethodDelete, path: periodicPath(name)}, nil)
	return err
}

// RunPeriodic makes a job from a periodic job now (POST
// /v1/periodic/{name}/run), outside its schedule.
func (c *Client) RunPeriodic(ctx context.Context, name string) (*PeriodicRun, error) {
	var out PeriodicRun
	if _, err := c.call(ctx, request{method: http.MethodPost, path: periodicPath(name) + "/run"}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
