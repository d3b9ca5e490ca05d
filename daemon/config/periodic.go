package config

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/corral-dev/corral/queue"
	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

// Periodic is a `periodic "name" { ... }` block: a job submitted on a cron
// schedule. The leader replicates the blocks into the FSM like queue
// settings; periodic jobs made through the API live beside them.
type Periodic struct {
	// Cron is the schedule: five fields, six with leading seconds, or a
	// descriptor such as "@hourly" or "@every 10s". Required.
	Cron string
	// Timezone is an IANA zone the schedule is read in; default "" (UTC).
	Timezone string
	// Plugin runs each job. Required.
	Plugin string
	// Payload is handed to the plugin: a string as is, any other value
	// (object, list, number) as JSON; default none.
	Payload []byte
	// Queue receives the jobs; default "default".
	Queue string
	// Priority of each job; default 0.
	Priority int
	// MaxAttempts of each job; default the queue's.
	MaxAttempts int
	// Timeout of one attempt; default 30m.
	Timeout time.Duration
	// Overlap is "skip" (default: no new job while the last one is not
	// finished) or "allow".
	Overlap string
	// CatchUp fires every tick missed while the cluster had no leader;
	// default false (only the latest missed tick fires).
	CatchUp bool
}

// QueuePeriodic translates the block into the FSM's definition.
func (p Periodic) QueuePeriodic(name string) (queue.Periodic, error) {
	overlap, err := queue.ParseOverlap(p.Overlap)
	if err != nil {
		return queue.Periodic{}, err
	}
	return queue.Periodic{
		Name: name, Cron: p.Cron, Timezone: p.Timezone, Overlap: overlap, CatchUp: p.CatchUp,
		Job: queue.Spec{Queue: p.Queue, Plugin: p.Plugin, Payload: p.Payload, Priority: p.Priority,
			MaxAttempts: p.MaxAttempts, Timeout: p.Timeout},
	}, nil
}

func decodePeriodic(b *hcl.Block, c *Config) hcl.Diagnostics {
	name := b.Labels[0]
	p := c.Periodics[name]
	_, diags := decodeAttrs(b.Body, "periodic."+name, map[string]setter{
		"cron":         stringAttr(&p.Cron),
		"timezone":     stringAttr(&p.Timezone),
		"plugin":       stringAttr(&p.Plugin),
		"payload":      payloadAttr(&p.Payload),
		"queue":        stringAttr(&p.Queue),
		"priority":     intAttr(&p.Priority),
		"max_attempts": intAttr(&p.MaxAttempts),
		"timeout":      durationAttr(&p.Timeout),
		"overlap":      stringAttr(&p.Overlap),
		"catch_up":     boolAttr(&p.CatchUp),
	}, nil)
	if c.Periodics == nil {
		c.Periodics = map[string]Periodic{}
	}
	c.Periodics[name] = p
	return diags
}

// payloadAttr reads a payload: a string as its bytes, anything else as JSON.
func payloadAttr(p *[]byte) setter {
	return func(expr hcl.Expression, key string) hcl.Diagnostics {
		v, diags := expr.Value(nil)
		if diags.HasErrors() {
			return annotate(diags, key)
		}
		if v.Type() == cty.String && v.IsKnown() && !v.IsNull() {
			*p = []byte(v.AsString())
			return nil
		}
		js, err := ctyjson.Marshal(v, v.Type())
		if err != nil {
			return hcl.Diagnostics{{
				Severity: hcl.DiagError,
				Summary:  fmt.Sprintf("cannot encode %q as JSON", key),
				Detail:   err.Error(),
				Subject:  expr.Range().Ptr(),
			}}
		}
		*p = js
		return nil
	}
}

// validatePeriodics checks every periodic block with the FSM's own rules.
func (v *validator) validatePeriodics(c *Config) {
	for _, name := range slices.Sorted(maps.Keys(c.Periodics)) {
		qp, err := c.Periodics[name].QueuePeriodic(name)
		if err == nil {
			err = queue.ValidatePeriodic(&qp)
		}
		if err != nil {
			v.addf("periodic.%s: %v", name, err)
		}
	}
}
