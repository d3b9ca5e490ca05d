package host

import (
	"testing"
	"time"
)

// TestTimeoutNeverRoundsToNone: the plugin is told a timeout in whole
// milliseconds; any positive timeout is at least 1ms, never 0 (none).
func TestTimeoutNeverRoundsToNone(t *testing.T) {
	for d, want := range map[time.Duration]int64{
		0: 0, -time.Second: 0, time.Nanosecond: 1, 30: 1, time.Millisecond: 1,
		1500 * time.Microsecond: 2, 2 * time.Second: 2000,
	} {
		if got := timeoutMs(d); got != want {
			t.Errorf("timeoutMs(%s) = %d, want %d", d, got, want)
		}
	}
}
