package server

import (
	"context"

	"github.com/corral-dev/corral/queue"
)

// syncQueueRates replicates the rate limits of this node's queue blocks
// where the FSM differs. A queue whose block sets no rate keeps the limit
// the API gave it.
func (s *Server) syncQueueRates(ctx context.Context) {
	current := map[string]queue.Rate{}
	for _, q := range s.store.Queues() {
		if q.Rate != nil {
			current[q.Name] = q.Rate.Rate
		}
	}
	var cmds []queue.Command
	var names []string
	for name, want := range s.cfg.Rates {
		if current[name] == want {
			continue
		}
		cmds = append(cmds, &queue.SetQueueRate{Name: name, Rate: want})
		names = append(names, name)
	}
	s.applyConfig(ctx, cmds, names, "cannot apply queue rate limit", "queue")
}
