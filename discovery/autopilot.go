package discovery

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	autopilot "github.com/hashicorp/raft-autopilot"
)

// LocalStats reads this node's raft stats in the form autopilot wants. The
// daemon serves it to the leader's StatsFetcher.
func LocalStats(r *raft.Raft) (*autopilot.ServerStats, error) {
	stats := r.Stats()
	term, err := strconv.ParseUint(stats["last_log_term"], 10, 64)
	if err != nil {
		return nil, fmt.Errorf("parse raft last_log_term %q: %w", stats["last_log_term"], err)
	}
	index, err := strconv.ParseUint(stats["last_log_index"], 10, 64)
	if err != nil {
		return nil, fmt.Errorf("parse raft last_log_index %q: %w", stats["last_log_index"], err)
	}
	var contact time.Duration
	switch v := stats["last_contact"]; v {
	case "never":
		contact = -1
	case "0", "":
	default:
		if contact, err = time.ParseDuration(v); err != nil {
			return nil, fmt.Errorf("parse raft last_contact %q: %w", v, err)
		}
	}
	return &autopilot.ServerStats{LastContact: contact, LastTerm: term, LastIndex: index}, nil
}

// delegate is the autopilot.ApplicationIntegration: Serf members are the
// known servers.
type delegate struct{ m *Manager }

var _ autopilot.ApplicationIntegration = (*delegate)(nil)

func (d *delegate) AutopilotConfig() *autopilot.Config {
	c := d.m.cfg
	return &autopilot.Config{
		CleanupDeadServers:      true,
		LastContactThreshold:    c.LastContactThreshold,
		MaxTrailingLogs:         c.MaxTrailingLogs,
		MinQuorum:               uint(c.MinQuorum),
		ServerStabilizationTime: c.ServerStabilizationTime,
	}
}

func (d *delegate) NotifyState(s *autopilot.State) { d.m.apState.Store(s) }

// KnownServers maps every Serf server to an autopilot server. A "leaving"
// member counts as alive so that it is not cleaned up as dead while its
// graceful leave is in flight (the leave itself removes it).
func (d *delegate) KnownServers() map[raft.ServerID]*autopilot.Server {
	isLeader := d.m.raft.State() == raft.Leader
	out := make(map[raft.ServerID]*autopilot.Server)
	// Of several members claiming one id (an impostor, a clone), only the
	// one at the address raft has for that id is known.
	inRaft := map[raft.ServerID]raft.ServerAddress{}
	if cfg, err := d.m.configuration(); err == nil {
		for _, s := range cfg.Servers {
			inRaft[s.ID] = s.Address
		}
	}
	for _, mem := range d.m.agent.Members() {
		srv, ok := ParseServer(mem)
		if !ok {
			continue
		}
		id := raft.ServerID(srv.ID)
		status := nodeStatus(mem.Status)
		if prev, ok := out[id]; ok {
			want, known := inRaft[id]
			switch {
			case known && prev.Address == want && raft.ServerAddress(srv.RaftAddr) != want:
				continue // the member at raft's address for this id wins
			case known && prev.Address != want && raft.ServerAddress(srv.RaftAddr) == want:
			case prev.NodeStatus == autopilot.NodeAlive && status != autopilot.NodeAlive:
				continue // an older member under another name; the alive one wins
			}
		}
		out[id] = &autopilot.Server{
			ID:          id,
			Name:        mem.Name,
			Address:     raft.ServerAddress(srv.RaftAddr),
			NodeStatus:  status,
			Meta:        mem.Tags,
			RaftVersion: raft.ProtocolVersionMax,
			IsLeader:    isLeader && id == d.m.self,
			NodeType:    autopilot.NodeVoter,
		}
	}
	for id, s := range out {
		d.m.failures.observe(string(id), memberStatusOf(s.NodeStatus))
	}
	return out
}

// memberStatusOf maps autopilot's node status back for the failure
// tracker (only "failed" matters to it).
func memberStatusOf(s autopilot.NodeStatus) MemberStatus {
	if s == autopilot.NodeFailed {
		return StatusFailed
	}
	return StatusAlive
}

func nodeStatus(s MemberStatus) autopilot.NodeStatus {
	switch s {
	case StatusAlive, StatusLeaving:
		return autopilot.NodeAlive
	case StatusFailed:
		return autopilot.NodeFailed
	case StatusLeft:
		return autopilot.NodeLeft
	default:
		return autopilot.NodeUnknown
	}
}

// FetchServerStats returns this node's stats from raft and the others'
// through the StatsFetcher, concurrently, within ctx. Without a fetcher,
// alive servers are reported as in contact and caught up with this leader.
func (d *delegate) FetchServerStats(ctx context.Context, servers map[raft.ServerID]*autopilot.Server) map[raft.ServerID]*autopilot.ServerStats {
	out := make(map[raft.ServerID]*autopilot.ServerStats, len(servers))
	local, err := LocalStats(d.m.raft)
	if err != nil {
		d.m.logger.Warn("cannot read local raft stats", "error", err)
		return out
	}
	fetch := d.m.cfg.StatsFetcher
	byID := make(map[raft.ServerID]Member)
	if fetch != nil {
		for _, mem := range d.m.agent.Members() {
			if srv, ok := ParseServer(mem); ok && mem.Status == StatusAlive {
				byID[raft.ServerID(srv.ID)] = mem
			}
		}
	}

	type result struct {
		id    raft.ServerID
		stats *autopilot.ServerStats
	}
	var (
		wg      sync.WaitGroup
		results = make(chan result, len(servers))
	)
	for id, srv := range servers {
		switch {
		case id == d.m.self:
			out[id] = local
		case srv.NodeStatus != autopilot.NodeAlive:
		case fetch == nil:
			out[id] = &autopilot.ServerStats{LastTerm: local.LastTerm, LastIndex: local.LastIndex}
		default:
			mem, ok := byID[id]
			if !ok {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				st, err := fetch(ctx, mem)
				if err != nil {
					d.m.logger.Debug("cannot fetch server stats", "node", mem.Name, "id", id, "error", err)
					return
				}
				results <- result{id, st}
			}()
		}
	}
	wg.Wait()
	close(results)
	for r := range results {
		out[r.id] = r.stats
	}
	return out
}

// RemoveFailedServer hands autopilot's removal decision to the leader loop
// without blocking; when the queue is full the next autopilot round asks
// again.
func (d *delegate) RemoveFailedServer(srv *autopilot.Server) {
	if srv.ID == d.m.self {
		return
	}
	d.m.logger.Info("dead server cleanup: removing server", "node", srv.Name, "id", srv.ID, "status", srv.NodeStatus)
	select {
	case d.m.removeCh <- srv.ID:
	default:
	}
}

// promoter is autopilot's StablePromoter with two Corral rules on top:
// at most maxVoters voters (the longest-stable non-voters are promoted
// first when there is room), and dead-server cleanup only after
// cleanupAfter, never of this node, never more than (voters-1)/2 voters at
// a time and never below minQuorum voters.
type promoter struct {
	autopilot.StablePromoter

	maxVoters    int
	minQuorum    int
	cleanupAfter time.Duration
	self         raft.ServerID
	failures     *failureTracker
	logger       hclog.Logger
}

var _ autopilot.Promoter = (*promoter)(nil)

func (p *promoter) CalculatePromotionsAndDemotions(c *autopilot.Config, s *autopilot.State) autopilot.RaftChanges {
	changes := p.StablePromoter.CalculatePromotionsAndDemotions(c, s)
	voters := 0
	for _, srv := range s.Servers {
		if srv.State.IsPotentialVoter() {
			voters++
		}
	}
	room := p.maxVoters - voters
	if room <= 0 {
		changes.Promotions = nil
		return changes
	}
	sort.Slice(changes.Promotions, func(i, j int) bool {
		a, b := s.Servers[changes.Promotions[i]], s.Servers[changes.Promotions[j]]
		if !a.Health.StableSince.Equal(b.Health.StableSince) {
			return a.Health.StableSince.Before(b.Health.StableSince)
		}
		return changes.Promotions[i] < changes.Promotions[j]
	})
	if len(changes.Promotions) > room {
		changes.Promotions = changes.Promotions[:room]
	}
	return changes
}

func (p *promoter) FilterFailedServerRemovals(_ *autopilot.Config, s *autopilot.State, failed *autopilot.FailedServers) *autopilot.FailedServers {
	staleFor := p.failures.observeStale(append(append([]raft.ServerID(nil), failed.StaleVoters...), failed.StaleNonVoters...))
	staleReady := func(id raft.ServerID) bool {
		return id != p.self && staleFor[id] >= p.cleanupAfter
	}
	failedReady := func(srv *autopilot.Server) bool {
		if srv.ID == p.self {
			return false
		}
		if srv.NodeStatus == autopilot.NodeLeft {
			return true
		}
		d, ok := p.failures.failedFor(string(srv.ID))
		return ok && d >= p.cleanupAfter
	}

	voters := len(s.Voters)
	budget := (voters - 1) / 2
	if p.minQuorum > 0 && voters-p.minQuorum < budget {
		budget = voters - p.minQuorum
	}

	out := &autopilot.FailedServers{}
	for _, id := range failed.StaleNonVoters {
		if staleReady(id) {
			out.StaleNonVoters = append(out.StaleNonVoters, id)
		}
	}
	for _, srv := range failed.FailedNonVoters {
		if failedReady(srv) {
			out.FailedNonVoters = append(out.FailedNonVoters, srv)
		}
	}
	for _, id := range failed.StaleVoters {
		if staleReady(id) && budget > 0 {
			budget--
			out.StaleVoters = append(out.StaleVoters, id)
		}
	}
	for _, srv := range failed.FailedVoters {
		if !failedReady(srv) {
			continue
		}
		if budget <= 0 {
			p.logger.Debug("keeping failed voter: removing it would risk quorum", "id", srv.ID, "voters", voters, "min_quorum", p.minQuorum)
			continue
		}
		budget--
		out.FailedVoters = append(out.FailedVoters, srv)
	}
	return out
}

// failureTracker remembers since when each server has been failed in Serf
// (by node ID) and since when each raft server has been unknown to Serf.
type failureTracker struct {
	mu          sync.Mutex
	now         func() time.Time
	failedSince map[string]time.Time
	staleSince  map[raft.ServerID]time.Time
}

func newFailureTracker() *failureTracker {
	return &failureTracker{
		now:         time.Now,
		failedSince: make(map[string]time.Time),
		staleSince:  make(map[raft.ServerID]time.Time),
	}
}

// observe records a member status: the first failed sighting starts the
// clock, any other status clears it.
func (t *failureTracker) observe(id string, st MemberStatus) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if st != StatusFailed {
		delete(t.failedSince, id)
		return
	}
	if _, ok := t.failedSince[id]; !ok {
		t.failedSince[id] = t.now()
	}
}

// failedFor reports how long id has been failed.
func (t *failureTracker) failedFor(id string) (time.Duration, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	since, ok := t.failedSince[id]
	if !ok {
		return 0, false
	}
	return t.now().Sub(since), true
}

// observeStale records the current set of stale raft servers and returns
// how long each has been stale; servers no longer stale are forgotten.
func (t *failureTracker) observeStale(ids []raft.ServerID) map[raft.ServerID]time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	current := make(map[raft.ServerID]bool, len(ids))
	out := make(map[raft.ServerID]time.Duration, len(ids))
	for _, id := range ids {
		current[id] = true
		since, ok := t.staleSince[id]
		if !ok {
			since = now
			t.staleSince[id] = now
		}
		out[id] = now.Sub(since)
	}
	for id := range t.staleSince {
		if !current[id] {
			delete(t.staleSince, id)
		}
	}
	return out
}
