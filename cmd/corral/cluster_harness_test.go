package main_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Short timings for loopback clusters.
const (
	testHeartbeat     = 500 * time.Millisecond
	testStabilization = time.Second
)

// clusterOpts are the settings shared by every node of a test cluster.
type clusterOpts struct {
	// bootstrapExpect is written into every initial node's config.
	bootstrapExpect int
	// maxVoters is server.max_voters; 0 keeps the default.
	maxVoters int
	// cleanupAfter is server.dead_server_cleanup_after.
	cleanupAfter time.Duration
	// encrypt is serf.encrypt; "" disables gossip encryption.
	encrypt string
	// echoConcurrency is plugin "echo" { concurrency }; 0 keeps the default.
	echoConcurrency int
	// acl keeps ACLs on (the default outside -dev); without it the config
	// says acl { enabled = false }.
	acl bool
}

// node is one agent of a test cluster with its own data dir and ports.
type node struct {
	*proc
	c        *cluster
	name     string
	dir      string
	httpPort int
	raftPort int
	serfPort int
	// extra is appended to the node's config file.
	extra string
	// tags are more lines of the node's tags block (`zone = "a"`).
	tags string
	// join is the node's retry_join list (Serf addresses).
	join []string
	// expect is the node's bootstrap_expect.
	expect int
}

// cluster is a set of agents started by one test.
type cluster struct {
	t     *testing.T
	opts  clusterOpts
	nodes []*node
}

// newCluster writes a config for n nodes that know only each other's Serf
// addresses and starts them all.
func newCluster(t *testing.T, n int, opts clusterOpts) *cluster {
	t.Helper()
	c := &cluster{t: t, opts: opts}
	for i := 0; i < n; i++ {
		c.nodes = append(c.nodes, c.newNode(fmt.Sprintf("n%d", i+1)))
	}
	for _, nd := range c.nodes {
		for _, other := range c.nodes {
			if other != nd {
				nd.join = append(nd.join, other.serfAddr())
			}
		}
		nd.expect = opts.bootstrapExpect
	}
	for _, nd := range c.nodes {
		nd.start()
	}
	return c
}

// newNode allocates a data dir and ports for a node; it does not start it.
func (c *cluster) newNode(name string) *node {
	c.t.Helper()
	ports := freePorts(c.t, 3)
	return &node{c: c, name: name, dir: c.t.TempDir(), httpPort: ports[0], raftPort: ports[1], serfPort: ports[2]}
}

// addNode starts one more node that joins through the Serf address of
// via only, with no bootstrap_expect.
func (c *cluster) addNode(name string, via *node) *node {
	c.t.Helper()
	nd := c.newNode(name)
	nd.join = []string{via.serfAddr()}
	c.nodes = append(c.nodes, nd)
	nd.start()
	return nd
}

func (nd *node) serfAddr() string { return "127.0.0.1:" + strconv.Itoa(nd.serfPort) }
func (nd *node) raftAddr() string { return "127.0.0.1:" + strconv.Itoa(nd.raftPort) }
func (nd *node) url() string      { return "http://127.0.0.1:" + strconv.Itoa(nd.httpPort) }

// writeConfig writes the node's HCL config file into its data dir's parent
// test dir and returns its path.
func (nd *node) writeConfig() string {
	nd.c.t.Helper()
	o := nd.c.opts
	var b strings.Builder
	fmt.Fprintf(&b, "node_name = %q\ndata_dir = %q\nbind_addr = \"127.0.0.1\"\nlog_level = \"debug\"\n", nd.name, filepath.Join(nd.dir, "data"))
	fmt.Fprintf(&b, "ports {\n  http = %d\n  raft = %d\n  serf = %d\n}\n", nd.httpPort, nd.raftPort, nd.serfPort)
	b.WriteString("server {\n")
	fmt.Fprintf(&b, "  bootstrap_expect = %d\n", nd.expect)
	quoted := make([]string, len(nd.join))
	for i, j := range nd.join {
		quoted[i] = strconv.Quote(j)
	}
	fmt.Fprintf(&b, "  retry_join = [%s]\n", strings.Join(quoted, ", "))
	if o.maxVoters > 0 {
		fmt.Fprintf(&b, "  max_voters = %d\n", o.maxVoters)
	}
	fmt.Fprintf(&b, "  server_stabilization_time = %q\n", testStabilization.String())
	fmt.Fprintf(&b, "  dead_server_cleanup_after = %q\n", o.cleanupAfter.String())
	b.WriteString("  reconcile_interval = \"2s\"\n}\n")
	// The lease equals the heartbeat timeout: with a shorter one a leader
	// on a loaded 2-core CI machine stepped down whenever one answer came
	// late, and clients saw elections no fault caused.
	fmt.Fprintf(&b, "raft {\n  heartbeat_timeout = %q\n  election_timeout = %q\n  leader_lease_timeout = %q\n}\n",
		testHeartbeat.String(), testHeartbeat.String(), testHeartbeat.String())
	if o.encrypt != "" {
		fmt.Fprintf(&b, "serf {\n  encrypt = %q\n}\n", o.encrypt)
	}
	fmt.Fprintf(&b, "tags {\n  name = %q\n%s}\n", nd.name, nd.tags)
	if o.echoConcurrency > 0 {
		fmt.Fprintf(&b, "plugin \"echo\" {\n  concurrency = %d\n}\n", o.echoConcurrency)
	}
	if !o.acl {
		b.WriteString("acl {\n  enabled = false\n}\n")
	}
	b.WriteString(nd.extra)
	path := filepath.Join(nd.dir, "agent.hcl")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		nd.c.t.Fatal(err)
	}
	return path
}

// start (re)writes the node's config and starts (or restarts) its agent.
func (nd *node) start() {
	nd.c.t.Helper()
	args := []string{"-config", nd.writeConfig()}
	if nd.proc == nil {
		nd.proc = startAgent(nd.c.t, nd.name, nd.httpPort, args...)
		nd.keepLog()
		return
	}
	nd.proc.args = args
	nd.proc.httpURL = nd.url()
	nd.proc.start()
}

// keepLog writes the node's output to $CORRAL_E2E_LOGDIR/<test>-<node>.log
// at cleanup when that variable is set, to study passing runs.
func (nd *node) keepLog() {
	dir := os.Getenv("CORRAL_E2E_LOGDIR")
	if dir == "" {
		return
	}
	t := nd.c.t
	t.Cleanup(func() {
		path := filepath.Join(dir, t.Name()+"-"+nd.name+".log")
		if err := os.WriteFile(path, []byte(nd.log.String()), 0o644); err != nil {
			t.Logf("keep log of %s: %v", nd.name, err)
		}
	})
}

// running reports whether the node's process has not exited.
func (nd *node) running() bool {
	select {
	case <-nd.done:
		return false
	default:
		return true
	}
}

// alive returns the nodes whose processes run, except the given ones.
func (c *cluster) alive(except ...*node) []*node {
	var out []*node
	for _, nd := range c.nodes {
		skip := !nd.running()
		for _, e := range except {
			skip = skip || e == nd
		}
		if !skip {
			out = append(out, nd)
		}
	}
	return out
}

// byName finds a node by name.
func (c *cluster) byName(name string) *node {
	for _, nd := range c.nodes {
		if nd.name == name {
			return nd
		}
	}
	return nil
}

// raftPeer is one entry of `corral operator raft list-peers -json`.
type raftPeer struct {
	ID      string `json:"id"`
	Node    string `json:"node"`
	Address string `json:"address"`
	Leader  bool   `json:"leader"`
	Voter   bool   `json:"voter"`
}

// listPeers runs `corral operator raft list-peers -json` against nd; ok is
// false when the command fails.
func listPeers(t *testing.T, nd *node) ([]raftPeer, bool) {
	t.Helper()
	var conf struct {
		Servers []raftPeer `json:"servers"`
	}
	ok := cliJSON(t, nd, &conf, "operator", "raft", "list-peers", "-json")
	return conf.Servers, ok
}

// cliJSON runs the CLI with args against nd and decodes its JSON output
// into out; false when the command fails or prints something else.
func cliJSON(t *testing.T, nd *node, out any, args ...string) bool {
	t.Helper()
	stdout, _, code := cli(t, nd.url(), args...)
	return code == 0 && json.Unmarshal([]byte(stdout), out) == nil
}

// self is the part of GET /v1/agent/self the tests use.
type self struct {
	Node   string `json:"node"`
	ID     string `json:"id"`
	State  string `json:"state"`
	Leader string `json:"leader"`
}

var quickClient = &http.Client{Timeout: 2 * time.Second}

// agentSelf reads nd's /v1/agent/self.
func agentSelf(nd *node) (self, bool) {
	resp, err := quickClient.Get(nd.url() + "/v1/agent/self")
	if err != nil {
		return self{}, false
	}
	defer resp.Body.Close()
	var s self
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&s) != nil {
		return self{}, false
	}
	return s, true
}

// peersView is what list-peers says about the cluster as seen from nd.
type peersView struct {
	voters, nonVoters map[string]raftPeer // by node name
	leader            string
}

func viewOf(peers []raftPeer) peersView {
	v := peersView{voters: map[string]raftPeer{}, nonVoters: map[string]raftPeer{}}
	for _, p := range peers {
		if p.Voter {
			v.voters[p.Node] = p
		} else {
			v.nonVoters[p.Node] = p
		}
		if p.Leader {
			v.leader = p.Node
		}
	}
	return v
}

// waitPeers polls list-peers on the leader (as seen from any live node)
// until cond holds for its view, and returns that view.
func (c *cluster) waitPeers(timeout time.Duration, what string, cond func(v peersView) bool) peersView {
	c.t.Helper()
	var last peersView
	var lastRaw []raftPeer
	deadline := time.Now().Add(timeout)
	for {
		if ld := c.leader(); ld != nil {
			if peers, ok := listPeers(c.t, ld); ok {
				lastRaw = peers
				last = viewOf(peers)
				if last.leader == ld.name && cond(last) {
					return last
				}
			}
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("timed out after %s waiting for %s; last raft configuration: %+v", timeout, what, lastRaw)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// leader returns the live node that reports itself as leader, or nil.
func (c *cluster) leader() *node {
	for _, nd := range c.alive() {
		if s, ok := agentSelf(nd); ok && s.State == "leader" {
			return nd
		}
	}
	return nil
}

// voterNames reports whether the view's voters are exactly names.
func (v peersView) votersAre(names ...string) bool {
	if len(v.voters) != len(names) {
		return false
	}
	for _, n := range names {
		if _, ok := v.voters[n]; !ok {
			return false
		}
	}
	return true
}

// has reports whether name is in the raft configuration.
func (v peersView) has(name string) bool {
	_, a := v.voters[name]
	_, b := v.nonVoters[name]
	return a || b
}

// submit submits a job through nd with the CLI and returns its ID.
func submit(t *testing.T, nd *node, args ...string) string {
	t.Helper()
	stdout, stderr, code := cli(t, nd.url(), append([]string{"job", "submit"}, args...)...)
	id := strings.TrimSpace(stdout)
	if code != 0 || id == "" {
		t.Fatalf("job submit %v via %s: exit %d, stdout %q, stderr %q", args, nd.name, code, stdout, stderr)
	}
	return id
}

// jobInfo is the part of a job the tests use.
type jobInfo struct {
	ID      string `json:"id"`
	State   string `json:"state"`
	Attempt int    `json:"attempt"`
	Node    string `json:"node"`
}

// waitVoterWithJobs waits until the restarted nd is one of the voters
// n1, n2, n3 at its current raft address and lists jobs (all n of them)
// on its current HTTP port.
func (c *cluster) waitVoterWithJobs(nd *node, jobs int) {
	c.t.Helper()
	c.waitPeers(30*time.Second, nd.name+" a voter at "+nd.raftAddr(), func(v peersView) bool {
		return v.votersAre("n1", "n2", "n3") && v.voters[nd.name].Address == nd.raftAddr()
	})
	eventually(c.t, 10*time.Second, nd.name+" lists every job", func() bool {
		list, ok := listJobs(c.t, nd)
		return ok && len(list) == jobs
	})
}

// listJobs runs `corral job list -json -limit 0` (every job) against nd.
func listJobs(t *testing.T, nd *node, args ...string) (map[string]jobInfo, bool) {
	t.Helper()
	var list struct {
		Jobs []jobInfo `json:"jobs"`
	}
	if !cliJSON(t, nd, &list, append([]string{"job", "list", "-json", "-limit", "0"}, args...)...) {
		return nil, false
	}
	out := make(map[string]jobInfo, len(list.Jobs))
	for _, j := range list.Jobs {
		out[j.ID] = j
	}
	return out, true
}

// members runs `corral members -json` against nd and returns status by
// node name.
func members(t *testing.T, nd *node) (map[string]string, bool) {
	t.Helper()
	var ms []struct {
		Name   string `json:"name"`
		Status string `json:"status"`
	}
	if !cliJSON(t, nd, &ms, "members", "-json") {
		return nil, false
	}
	out := make(map[string]string, len(ms))
	for _, m := range ms {
		out[m.Name] = m.Status
	}
	return out, true
}
