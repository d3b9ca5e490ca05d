package config

import (
	"fmt"

	"github.com/corral-dev/corral/queue"
)

// QueueRate translates the block's rate and burst (ok is false when the
// block sets no rate). The error names the key.
func (q Queue) QueueRate(name string) (r queue.Rate, ok bool, err error) {
	if q.Rate == "" {
		if q.Burst != 0 {
			return queue.Rate{}, false, fmt.Errorf("queue.%s.burst = %d: set rate as well (such as rate = \"100/s\")", name, q.Burst)
		}
		return queue.Rate{}, false, nil
	}
	r, err = queue.ParseRate(q.Rate)
	if err != nil {
		return queue.Rate{}, false, fmt.Errorf("queue.%s.rate = %q: want N/s, N/m or N/h with N in 1-%d, such as \"100/s\" (or \"0\" for no limit)", name, q.Rate, queue.MaxRateCount)
	}
	if r.IsZero() {
		if q.Burst != 0 {
			return queue.Rate{}, false, fmt.Errorf("queue.%s.burst = %d: rate = %q sets no limit; drop burst or set a rate such as \"100/s\"", name, q.Burst, q.Rate)
		}
		return r, true, nil
	}
	r.Burst = int64(q.Burst)
	if q.Burst == 0 {
		r.Burst = 1
	}
	if q.Burst < 0 || q.Burst > queue.MaxRateBurst {
		return queue.Rate{}, false, fmt.Errorf("queue.%s.burst = %d: must be 1-%d (default 1)", name, q.Burst, queue.MaxRateBurst)
	}
	return r, true, nil
}
