package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/corral-dev/corral/queue"
)

func TestLoadQueueRate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.hcl")
	src := `
queue "api" { rate = "100/s"  burst = 20 }
queue "nightly" { rate = "30/m" }
queue "plain" { concurrency = 2 }
`
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(nil, path)
	if err != nil {
		t.Fatal(err)
	}
	c.DataDir = t.TempDir()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]queue.Rate{
		"api":     {Count: 100, Per: time.Second, Burst: 20},
		"nightly": {Count: 30, Per: time.Minute, Burst: 1},
	} {
		got, ok, err := c.Queues[name].QueueRate(name)
		if err != nil || !ok || got != want {
			t.Errorf("queue %s: rate %+v, %v, %v; want %+v", name, got, ok, err, want)
		}
	}
	if _, ok, err := c.Queues["plain"].QueueRate("plain"); ok || err != nil {
		t.Errorf("queue without rate: ok %v, err %v", ok, err)
	}
}

// TestValidateQueueRateNamesTheKey: each bad value is one line naming the
// key and the form wanted.
func TestValidateQueueRateNamesTheKey(t *testing.T) {
	cases := map[string]struct {
		q    Queue
		want string
	}{
		"unit":            {Queue{Rate: "100/d"}, `queue.q.rate = "100/d": want N/s, N/m or N/h`},
		"number":          {Queue{Rate: "fast"}, `queue.q.rate = "fast": want N/s, N/m or N/h`},
		"burst":           {Queue{Rate: "1/s", Burst: -1}, "queue.q.burst = -1: must be 1-1000000"},
		"burst alone":     {Queue{Burst: 5}, "queue.q.burst = 5: set rate as well"},
		"burst, no limit": {Queue{Rate: "0", Burst: 5}, `queue.q.burst = 5: rate = "0" sets no limit`},
	}
	for name, tc := range cases {
		c := Default()
		c.DataDir = t.TempDir()
		q := DefaultQueue()
		q.Rate, q.Burst = tc.q.Rate, tc.q.Burst
		c.Queues = map[string]Queue{"q": q}
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", name, err, tc.want)
		}
	}
}
