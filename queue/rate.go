package queue

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/corral-dev/corral/internal/binenc"
)

// KindSetQueueRate is the command kind of SetQueueRate (see Kind: values
// are part of the log format).
const KindSetQueueRate Kind = 16 // *SetQueueRate

// Bounds of a rate limit.
const (
	// MaxRateCount bounds Rate.Count.
	MaxRateCount = 1_000_000
	// MaxRateBurst bounds Rate.Burst.
	MaxRateBurst = 1_000_000
)

// ErrBadRate means a rate limit is invalid; it is wrapped with details.
var ErrBadRate = errors.New("invalid rate limit")

// Rate is a queue's rate limit: at most Count claims per Per on average,
// and at most Burst at once (a token bucket of Burst tokens that refills
// Count tokens per Per). The zero Rate means no limit.
type Rate struct {
	// Count is the number of tokens added per Per (1..MaxRateCount).
	Count int64
	// Per is time.Second, time.Minute or time.Hour.
	Per time.Duration
	// Burst is the size of the bucket (1..MaxRateBurst).
	Burst int64
}

// IsZero reports whether r means "no limit".
func (r Rate) IsZero() bool { return r == Rate{} }

// String returns the rate as written in the configuration, e.g. "100/s"
// ("" for no limit). The burst is not part of it.
func (r Rate) String() string {
	if r.IsZero() {
		return ""
	}
	unit := map[time.Duration]string{time.Second: "s", time.Minute: "m", time.Hour: "h"}[r.Per]
	if unit == "" {
		unit = r.Per.String()
	}
	return strconv.FormatInt(r.Count, 10) + "/" + unit
}

// ParseRate parses "N/s", "N/m" or "N/h" ("0", "" and "none" mean no
// limit: the zero Rate). The burst is set separately.
func ParseRate(s string) (Rate, error) {
	switch strings.TrimSpace(s) {
	case "", "0", "none":
		return Rate{}, nil
	}
	num, unit, ok := strings.Cut(strings.TrimSpace(s), "/")
	per := map[string]time.Duration{"s": time.Second, "sec": time.Second, "second": time.Second,
		"m": time.Minute, "min": time.Minute, "minute": time.Minute,
		"h": time.Hour, "hour": time.Hour}[unit]
	n, err := strconv.ParseInt(num, 10, 64)
	if !ok || per == 0 || err != nil || n < 1 || n > MaxRateCount {
		return Rate{}, fmt.Errorf("%w: rate %q: want N/s, N/m or N/h with N in 1-%d, such as 100/s (or 0 for no limit)", ErrBadRate, s, MaxRateCount)
	}
	return Rate{Count: n, Per: per}, nil
}

// Validate checks a rate (the zero Rate is valid: no limit).
func (r Rate) Validate() error {
	if r.IsZero() {
		return nil
	}
	switch {
	case r.Per != time.Second && r.Per != time.Minute && r.Per != time.Hour:
		return fmt.Errorf("%w: period %s must be 1s, 1m or 1h", ErrBadRate, r.Per)
	case r.Count < 1 || r.Count > MaxRateCount:
		return fmt.Errorf("%w: rate %d per %s must be 1-%d", ErrBadRate, r.Count, r.Per, MaxRateCount)
	case r.Burst < 1 || r.Burst > MaxRateBurst:
		return fmt.Errorf("%w: burst %d must be 1-%d", ErrBadRate, r.Burst, MaxRateBurst)
	}
	return nil
}

// SetQueueRate sets (or, with the zero Rate, removes) a queue's rate
// limit. A queue that had no limit starts with a full bucket; a changed
// limit keeps the whole tokens the bucket holds, capped at the new burst.
// Setting the limit a queue already has changes nothing.
type SetQueueRate struct {
	Name string
	Rate Rate
}

// Kind implements Command.
func (*SetQueueRate) Kind() Kind { return KindSetQueueRate }

// bucket is a queue's token bucket. Tokens are kept in fixed point, one
// token being Per units, and refill by Count units per nanosecond of
// entry time, so every node computes exactly the same values with integer
// arithmetic. Buckets are replaced, never modified, once published.
type bucket struct {
	rate Rate
	// units is the bucket's content at last (0..Burst*Per).
	units int64
	// last is the entry time (unix nanos) units was computed at.
	last int64
}

// capacity is a full bucket in units.
func (b *bucket) capacity() int64 { return b.rate.Burst * int64(b.rate.Per) }

// at returns the bucket's units at the unix time now. Time before last
// (a new leader whose clock is behind) adds nothing.
func (b *bucket) at(now int64) int64 {
	if now <= b.last {
		return b.units
	}
	need := b.capacity() - b.units
	if need <= 0 {
		return b.capacity()
	}
	// Compare first so the product below stays under need (no overflow).
	if el := now - b.last; el < (need+b.rate.Count-1)/b.rate.Count {
		return b.units + el*b.rate.Count
	}
	return b.capacity()
}

// tokens returns the whole tokens available at now.
func (b *bucket) tokens(now int64) int64 { return b.at(now) / int64(b.rate.Per) }

// next returns the earliest unix time, not before now, at which a whole
// token is available.
func (b *bucket) next(now int64) int64 {
	base := max(now, b.last)
	u := b.at(base)
	per := int64(b.rate.Per)
	if u >= per {
		return base
	}
	return base + (per-u+b.rate.Count-1)/b.rate.Count
}

// take returns the bucket after one token was taken at now. The caller
// has checked that one is available.
func (b *bucket) take(now int64) *bucket {
	return &bucket{rate: b.rate, units: b.at(now) - int64(b.rate.Per), last: max(now, b.last)}
}

func (st *state) setQueueRate(c *SetQueueRate) Result {
	if !ValidQueueName(c.Name) {
		return Result{Err: badName(ErrBadQueue, "queue name", c.Name)}
	}
	if err := c.Rate.Validate(); err != nil {
		return Result{Err: err}
	}
	q := st.queue(c.Name)
	old := q.rate
	switch {
	case c.Rate.IsZero():
		q.rate = nil
	case old == nil:
		nb := &bucket{rate: c.Rate, last: st.now}
		nb.units = nb.capacity()
		q.rate = nb
	case old.rate == c.Rate:
	default:
		whole := min(old.tokens(st.now), c.Rate.Burst)
		q.rate = &bucket{rate: c.Rate, units: whole * int64(c.Rate.Per), last: max(st.now, old.last)}
	}
	return Result{}
}

// rateSpare returns how many jobs the queue's rate limit lets go at now
// (n when it has none).
func (q *queueState) rateSpare(n int, now int64) int {
	if q.rate == nil {
		return n
	}
	return int(min(int64(n), q.rate.tokens(now)))
}

// chargeRate takes one token from the bucket of j's queue, if it has one.
func (st *state) chargeRate(j *Job) {
	if q := st.queues[j.Queue]; q.rate != nil {
		q.rate = q.rate.take(st.now)
	}
}

// RateLimit is a queue's rate limit and its bucket as last updated by the
// FSM. Its methods tell the bucket at any later time.
type RateLimit struct {
	Rate
	b *bucket
}

// Tokens returns the (fractional) tokens in the bucket at now.
func (r RateLimit) Tokens(now time.Time) float64 {
	return float64(r.b.at(nanos(now))) / float64(r.Per)
}

// NextToken returns when the next whole token is available: now when one
// is.
func (r RateLimit) NextToken(now time.Time) time.Time {
	return fromNanos(r.b.next(nanos(now)))
}

// rateLimit returns the queue's limit for listing (nil: no limit).
func (q *queueState) rateLimit() *RateLimit {
	if q.rate == nil {
		return nil
	}
	return &RateLimit{Rate: q.rate.rate, b: q.rate}
}

// Rate codec: the command and the snapshot section "rates".

func appendRate(b []byte, r Rate) []byte {
	b = binary.AppendVarint(b, r.Count)
	b = binary.AppendVarint(b, int64(r.Per))
	return binary.AppendVarint(b, r.Burst)
}

func (d *decoder) rate() Rate {
	return Rate{Count: d.Varint(), Per: d.Dur(), Burst: d.Varint()}
}

// appendRateCommand encodes SetQueueRate; ok is false for any other
// command.
func appendRateCommand(b []byte, c Command) (_ []byte, ok bool) {
	if c, isRate := c.(*SetQueueRate); isRate && c != nil {
		b = append(b, byte(KindSetQueueRate))
		b = binenc.AppendString(b, c.Name)
		return appendRate(b, c.Rate), true
	}
	return b, false
}

// rateCommand decodes the command of kind k if it is SetQueueRate (nil
// otherwise).
func (d *decoder) rateCommand(k Kind) Command {
	if k != KindSetQueueRate {
		return nil
	}
	return &SetQueueRate{Name: d.name(), Rate: d.rate()}
}

// captureRates encodes every queue's rate limit and bucket, by queue name.
func captureRates(st *state) []byte {
	var names []string
	for _, name := range slices.Sorted(maps.Keys(st.queues)) {
		if st.queues[name].rate != nil {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return nil
	}
	b := binary.AppendUvarint(nil, uint64(len(names)))
	for _, name := range names {
		r := st.queues[name].rate
		b = binenc.AppendString(b, name)
		b = appendRate(b, r.rate)
		b = binary.AppendVarint(b, r.units)
		b = binary.AppendVarint(b, r.last)
	}
	return b
}

func restoreRates(st *state, d *decoder) {
	n := d.Count(5)
	for i := 0; i < n && d.Err() == nil; i++ {
		name := d.name()
		r := &bucket{rate: d.rate()}
		r.units = d.Varint()
		r.last = d.Varint()
		if d.Err() != nil {
			return
		}
		if err := r.rate.Validate(); err != nil || r.rate.IsZero() || !ValidQueueName(name) {
			d.Fail(fmt.Sprintf("bad rate limit of queue %q", name))
			return
		}
		if r.units < 0 || r.units > r.capacity() {
			d.Fail(fmt.Sprintf("queue %q: bucket holds %d of %d units", name, r.units, r.capacity()))
			return
		}
		q := st.queue(name)
		if q.rate != nil {
			d.Fail(fmt.Sprintf("duplicate rate limit of queue %q", name))
			return
		}
		q.rate = r
	}
}

// claimable is the dry run behind Store.Claimable: whether a claim at now
// would lease a job, and if not, the earliest time (unix nanos, 0 for
// none) a rate limit that holds back a job it could take gets a token.
func (st *state) claimable(tags map[string]string, slots map[string]int, now int64) (bool, int64) {
	var wake int64
	for p, n := range slots {
		if n <= 0 {
			continue
		}
		if len(st.pick(p, 1, tags, now)) > 0 {
			return true, 0
		}
		for _, q := range st.queues {
			t := q.ready[p]
			if q.rate == nil || t == nil || t.Len() == 0 || q.cfg.Paused ||
				(q.cfg.Concurrency > 0 && q.counts[StateRunning] >= q.cfg.Concurrency) {
				continue
			}
			at := q.rate.next(now)
			if wake != 0 && at >= wake {
				continue // no earlier wake-up: skip the scan for a job it could take
			}
			found := false
			t.Ascend(func(it readyItem) bool {
				found = matches(it.job.Constraints, tags)
				return !found
			})
			if found {
				wake = at
			}
		}
	}
	return false, wake
}

// QueuedAhead returns how many queued jobs of the named queue would be
// handed out before a new job of that priority: those with the same or a
// higher priority (FIFO within a priority), over all plugins, and of them
// those of plugin.
func (s *Store) QueuedAhead(queue, plugin string, priority int) (all, samePlugin int) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	q := s.st.queues[queue]
	if q == nil {
		return 0, 0
	}
	for p, t := range q.ready {
		n := 0
		t.Ascend(func(it readyItem) bool {
			if it.prio < priority {
				return false
			}
			n++
			return true
		})
		all += n
		if p == plugin {
			samePlugin = n
		}
	}
	return all, samePlugin
}
