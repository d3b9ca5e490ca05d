package main_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestClusterFormsFailsOverAndHeals runs a three-node cluster formed from
// Serf addresses alone through a leader crash, a restart on new ports and
// a long SIGSTOP of a follower.
func TestClusterFormsFailsOverAndHeals(t *testing.T) {
	t.Parallel()
	const cleanup = 4 * time.Second
	c := newCluster(t, 3, clusterOpts{bootstrapExpect: 3, cleanupAfter: cleanup})

	// 1. bootstrap_expect + retry_join alone form a cluster: one leader,
	// three voters.
	v := c.waitPeers(30*time.Second, "3 voters and a leader", func(v peersView) bool {
		return v.votersAre("n1", "n2", "n3") && len(v.nonVoters) == 0
	})
	t.Logf("cluster formed, leader %s", v.leader)

	// 2. SIGKILL of the leader: a new leader, no acknowledged job lost.
	old := c.byName(v.leader)
	var ids []string
	for i := 0; i < 10; i++ {
		// A plugin no node has keeps the jobs queued.
		ids = append(ids, submit(t, c.alive()[i%3], "nobody-has-this-plugin", fmt.Sprintf(`{"n":%d}`, i)))
	}
	old.kill()
	v = c.waitPeers(20*time.Second, "a new leader", func(v peersView) bool { return v.leader != old.name })
	t.Logf("new leader %s after SIGKILL of %s", v.leader, old.name)
	for _, nd := range c.alive() {
		eventually(t, 10*time.Second, "every acknowledged job on "+nd.name, func() bool {
			jobs, ok := listJobs(t, nd)
			if !ok {
				return false
			}
			for _, id := range ids {
				if _, ok := jobs[id]; !ok {
					return false
				}
			}
			return true
		})
	}
	ids = append(ids, submit(t, c.byName(v.leader), "nobody-has-this-plugin", `{}`))

	// The killed node restarts on its data dir and rejoins as a voter.
	old.start()
	c.waitVoterWithJobs(old, len(ids))

	// 7. A node restarted on other raft and HTTP ports with the same data
	// dir replaces its old address.
	ld := c.leader()
	moved := c.alive(ld)[0]
	moved.signal(syscall.SIGTERM) // no leave_on_terminate: stops without leaving
	if code := moved.waitExit(20 * time.Second); code != 0 {
		t.Fatalf("%s exit code after SIGTERM: %d", moved.name, code)
	}
	ports := freePorts(t, 2)
	moved.httpPort, moved.raftPort = ports[0], ports[1]
	moved.start()
	c.waitVoterWithJobs(moved, len(ids))

	// 8. SIGSTOP of a follower for longer than the cleanup delay: submits
	// keep succeeding, the node is removed, and after SIGCONT it is
	// re-added as a voter.
	ld = c.leader()
	stopped := c.alive(ld)[0]
	via := c.alive(stopped)
	var (
		submitted atomic.Int64
		failures  atomic.Int64
		firstErr  atomic.Value
		stop      = make(chan struct{})
		wg        sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		client := &http.Client{Timeout: 5 * time.Second}
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			nd := via[i%len(via)]
			resp, err := client.Post(nd.url()+"/v1/jobs", "application/json", strings.NewReader(`{"plugin":"nobody-has-this-plugin"}`))
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					err = fmt.Errorf("submit via %s: %s", nd.name, resp.Status)
				}
			}
			if err != nil {
				failures.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
				continue
			}
			submitted.Add(1)
		}
	}()
	stopAt := time.Now()
	stopped.signal(syscall.SIGSTOP)
	t.Cleanup(func() { stopped.signal(syscall.SIGCONT) })
	c.waitPeers(cleanup+20*time.Second, stopped.name+" removed from raft", func(v peersView) bool {
		return !v.has(stopped.name) && len(v.voters) == 2
	})
	if d := time.Since(stopAt); d < cleanup {
		t.Fatalf("%s removed %s after SIGSTOP, before dead_server_cleanup_after (%s)", stopped.name, d, cleanup)
	}
	stopped.signal(syscall.SIGCONT)
	c.waitPeers(30*time.Second, stopped.name+" re-added as a voter", func(v peersView) bool {
		return v.votersAre("n1", "n2", "n3")
	})
	close(stop)
	wg.Wait()
	if n := failures.Load(); n > 0 {
		t.Fatalf("%d submits failed while %s was stopped (quorum lost?); first: %v", n, stopped.name, firstErr.Load())
	}
	if submitted.Load() == 0 {
		t.Fatal("no submit succeeded while a follower was stopped")
	}
	t.Logf("%d submits succeeded while %s was stopped and re-added", submitted.Load(), stopped.name)
}

// TestClusterLeaveAndMaxVoters checks that max_voters keeps a fourth node a
// non-voter, that a graceful leave removes a voter from raft at once (long
// before dead_server_cleanup_after) and that the non-voter is then
// promoted.
func TestClusterLeaveAndMaxVoters(t *testing.T) {
	t.Parallel()
	const cleanup = time.Minute // a leave must not wait for this
	c := newCluster(t, 3, clusterOpts{bootstrapExpect: 3, maxVoters: 3, cleanupAfter: cleanup})
	c.waitPeers(30*time.Second, "3 voters", func(v peersView) bool { return v.votersAre("n1", "n2", "n3") })

	n4 := c.addNode("n4", c.nodes[0])
	c.waitPeers(20*time.Second, "n4 a non-voter", func(v peersView) bool { return v.has("n4") })
	// n4 is healthy for several stabilization periods (and autopilot
	// rounds) and stays a non-voter while three voters are there.
	watchUntil := time.Now().Add(6 * testStabilization)
	for time.Now().Before(watchUntil) {
		v := c.waitPeers(5*time.Second, "n4 in raft", func(v peersView) bool { return v.has("n4") })
		if _, voter := v.voters["n4"]; voter || len(v.voters) != 3 {
			t.Fatalf("max_voters = 3 but the voters are %v", v.voters)
		}
	}

	// Graceful leave of a follower voter.
	ld := c.leader()
	leaving := c.alive(ld, n4)[0]
	leaveAt := time.Now()
	if stdout, stderr, code := cli(t, leaving.url(), "leave"); code != 0 {
		t.Fatalf("corral leave on %s: exit %d, stdout %q, stderr %q", leaving.name, code, stdout, stderr)
	}
	c.waitPeers(10*time.Second, leaving.name+" removed from raft", func(v peersView) bool { return !v.has(leaving.name) })
	if d := time.Since(leaveAt); d > 10*time.Second {
		t.Fatalf("leave took %s to remove %s", d, leaving.name)
	}
	t.Logf("%s removed %s after corral leave", leaving.name, time.Since(leaveAt).Round(time.Millisecond))
	if code := leaving.waitExit(20 * time.Second); code != 0 {
		t.Fatalf("%s exit code after leave: %d", leaving.name, code)
	}
	want := []string{"n4"}
	for _, nd := range c.alive() {
		if nd != n4 {
			want = append(want, nd.name)
		}
	}
	c.waitPeers(20*time.Second, "n4 promoted once a voter left", func(v peersView) bool {
		return v.votersAre(want...) && len(v.nonVoters) == 0
	})
	eventually(t, 10*time.Second, leaving.name+" shown as left", func() bool {
		ms, ok := members(t, n4)
		return ok && ms[leaving.name] == "left"
	})

	// A leaving leader hands leadership over first and is removed too.
	ld = c.leader()
	leaveAt = time.Now()
	if _, stderr, code := cli(t, ld.url(), "leave"); code != 0 {
		t.Fatalf("corral leave on leader %s: exit %d: %s", ld.name, code, stderr)
	}
	v := c.waitPeers(15*time.Second, "the leaving leader removed", func(v peersView) bool {
		return v.leader != ld.name && !v.has(ld.name) && len(v.voters) == 2
	})
	t.Logf("leader %s left; %s leads after %s", ld.name, v.leader, time.Since(leaveAt).Round(time.Millisecond))
	if code := ld.waitExit(20 * time.Second); code != 0 {
		t.Fatalf("%s exit code after leave: %d", ld.name, code)
	}
}

// TestClusterJoinAndFollowerCrash checks that a fourth node joins by
// gossip as a non-voter and becomes a voter, and that a follower SIGKILLed
// while running jobs has them re-queued within seconds (they then run
// elsewhere) and is removed from raft after the cleanup delay.
func TestClusterJoinAndFollowerCrash(t *testing.T) {
	t.Parallel()
	const cleanup = 4 * time.Second
	c := newCluster(t, 3, clusterOpts{bootstrapExpect: 3, cleanupAfter: cleanup, echoConcurrency: 2})
	c.waitPeers(30*time.Second, "3 voters", func(v peersView) bool { return v.votersAre("n1", "n2", "n3") })

	// 3. A fourth node joins by gossip: non-voter, then voter.
	n4 := c.addNode("n4", c.nodes[1])
	sawNonVoter := false
	c.waitPeers(30*time.Second, "n4 a voter", func(v peersView) bool {
		if _, ok := v.nonVoters["n4"]; ok {
			sawNonVoter = true
		}
		_, ok := v.voters["n4"]
		return ok && len(v.voters) == 4
	})
	ld := c.leader()
	if ld == nil {
		t.Fatal("no leader after n4 joined")
	}
	if !sawNonVoter && !strings.Contains(ld.log.String(), "added server to raft as non-voter: node=n4") {
		t.Fatal("n4 became a voter without first joining as a non-voter")
	}
	if st, ok := agentSelf(n4); !ok || st.State != "follower" {
		t.Fatalf("n4 state %+v", st)
	}

	// 6. Jobs running on a follower are re-queued when it is SIGKILLed.
	var ids []string
	for i := 0; i < 6; i++ {
		ids = append(ids, submit(t, c.nodes[0], "echo", fmt.Sprintf(`{"echo":"%d","sleep":"60s"}`, i)))
	}
	var (
		victim  *node
		onVictm []string
	)
	eventually(t, 20*time.Second, "a follower running jobs", func() bool {
		jobs, ok := listJobs(t, ld)
		if !ok {
			return false
		}
		byNode := map[string][]string{}
		running := 0
		for _, id := range ids {
			if j := jobs[id]; j.State == "running" {
				running++
				byNode[j.Node] = append(byNode[j.Node], id)
			}
		}
		if running != len(ids) {
			return false
		}
		for _, nd := range c.alive(ld) {
			if len(byNode[nd.name]) > 0 {
				victim, onVictm = nd, byNode[nd.name]
				return true
			}
		}
		return false
	})
	t.Logf("killing %s running %d jobs", victim.name, len(onVictm))
	killAt := time.Now()
	victim.kill()
	eventually(t, 10*time.Second, "the jobs of "+victim.name+" re-queued", func() bool {
		jobs, ok := listJobs(t, ld)
		if !ok {
			return false
		}
		for _, id := range onVictm {
			if j := jobs[id]; j.State == "running" && j.Node == victim.name {
				return false
			}
		}
		return true
	})
	requeued := time.Since(killAt)
	t.Logf("jobs of %s re-queued %s after SIGKILL", victim.name, requeued.Round(time.Millisecond))
	// A lost attempt is re-queued without backoff, so the jobs run on
	// another node right away.
	eventually(t, 10*time.Second, "the re-queued jobs running elsewhere", func() bool {
		jobs, ok := listJobs(t, ld)
		if !ok {
			return false
		}
		for _, id := range onVictm {
			if j := jobs[id]; j.State != "running" || j.Node == victim.name || j.Attempt != 2 {
				return false
			}
		}
		return true
	})
	stdout, _, code := cli(t, ld.url(), "job", "status", "-json", onVictm[0])
	var st jobInfo
	if code != 0 || json.Unmarshal([]byte(stdout), &st) != nil || st.Node == victim.name || st.Node == "" {
		t.Fatalf("job status of a re-queued job: exit %d, %s", code, stdout)
	}

	c.waitPeers(cleanup+20*time.Second, victim.name+" removed after the cleanup delay", func(v peersView) bool {
		return !v.has(victim.name)
	})
	if d := time.Since(killAt); d < cleanup {
		t.Fatalf("%s removed from raft %s after SIGKILL, before dead_server_cleanup_after (%s)", victim.name, d, cleanup)
	}
}

// TestGossipEncryption forms a cluster with a key from `corral keygen` and
// checks that a node with another key cannot join it.
func TestGossipEncryption(t *testing.T) {
	t.Parallel()
	stdout, stderr, code := cli(t, "", "keygen")
	key := strings.TrimSpace(stdout)
	if code != 0 || key == "" {
		t.Fatalf("keygen: exit %d, %q %q", code, stdout, stderr)
	}
	c := newCluster(t, 2, clusterOpts{bootstrapExpect: 2, cleanupAfter: 30 * time.Second, encrypt: key})
	c.waitPeers(30*time.Second, "an encrypted 2-node cluster", func(v peersView) bool { return v.votersAre("n1", "n2") })

	other, _, _ := cli(t, "", "keygen")
	c.opts.encrypt = strings.TrimSpace(other)
	intruder := c.addNode("n3", c.nodes[0])
	eventually(t, 20*time.Second, "n3's join refused for its key", func() bool {
		return strings.Contains(intruder.log.String(), "retry join failed") &&
			strings.Contains(c.nodes[0].log.String(), "no installed keys could decrypt")
	})
	for _, nd := range c.nodes[:2] {
		ms, ok := members(t, nd)
		if !ok || len(ms) != 2 || ms["n3"] != "" {
			t.Fatalf("members of %s with a wrong-key node around: %v", nd.name, ms)
		}
	}
	ms, ok := members(t, intruder)
	if !ok || len(ms) != 1 {
		t.Fatalf("members of the wrong-key node: %v", ms)
	}
	c.waitPeers(5*time.Second, "raft unchanged", func(v peersView) bool { return v.votersAre("n1", "n2") && !v.has("n3") })
}

// TestPeersJSONRecoversLostQuorum follows the README's outage recovery: two
// of three nodes are lost for good, the survivor gets a peers.json naming
// only itself and restarts as a one-node cluster with its data; a lost node
// that comes back later is added again.
func TestPeersJSONRecoversLostQuorum(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, clusterOpts{bootstrapExpect: 3, cleanupAfter: 30 * time.Second})
	v := c.waitPeers(30*time.Second, "3 voters", func(v peersView) bool { return v.votersAre("n1", "n2", "n3") })
	survivor := c.byName(v.leader)
	var ids []string
	for i := 0; i < 5; i++ {
		ids = append(ids, submit(t, survivor, "nobody-has-this-plugin", fmt.Sprintf(`{"n":%d}`, i)))
	}
	lost := c.alive(survivor)
	for _, nd := range lost {
		nd.kill()
	}
	eventually(t, 20*time.Second, survivor.name+" without quorum", func() bool {
		s, ok := agentSelf(survivor)
		return ok && s.State != "leader"
	})
	survivor.kill()

	id, err := os.ReadFile(filepath.Join(survivor.dir, "data", "node-id"))
	if err != nil {
		t.Fatal(err)
	}
	peers := fmt.Sprintf(`[{"id": %q, "address": %q, "non_voter": false}]`, strings.TrimSpace(string(id)), survivor.raftAddr())
	peersPath := filepath.Join(survivor.dir, "data", "raft", "peers.json")
	if err := os.WriteFile(peersPath, []byte(peers), 0o600); err != nil {
		t.Fatal(err)
	}
	survivor.start()
	c.waitPeers(20*time.Second, survivor.name+" leading alone", func(v peersView) bool { return v.votersAre(survivor.name) })
	if _, err := os.Stat(peersPath); !os.IsNotExist(err) {
		t.Fatalf("peers.json not deleted after recovery: %v", err)
	}
	jobs, ok := listJobs(t, survivor)
	for _, id := range ids {
		if _, found := jobs[id]; !ok || !found {
			t.Fatalf("job %s lost in recovery (list ok %v, %d jobs)", id, ok, len(jobs))
		}
	}
	submit(t, survivor, "nobody-has-this-plugin", `{}`)

	// A lost node restarted on its old data is added back.
	back := lost[0]
	back.start()
	c.waitPeers(30*time.Second, back.name+" back as a voter", func(v peersView) bool {
		return v.votersAre(survivor.name, back.name)
	})
}
