package daemon_test

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/corral-dev/corral/daemon/api"
	"github.com/corral-dev/corral/daemon/certs"
	"github.com/corral-dev/corral/daemon/config"
	"github.com/corral-dev/corral/daemon/rpc"
	"github.com/corral-dev/corral/daemon/testcluster"
	"github.com/corral-dev/corral/queue"
	"github.com/hashicorp/raft"
)

// pki is a test cluster's certificates on disk.
type pki struct {
	dir                   string
	ca                    certs.PEM
	caFile                string
	serverCert, serverKey string
	clientCert, clientKey string
}

// newPKI makes a CA, one server and one client certificate for cluster
// "global", as `corral tls ca create` and `corral tls cert create` do.
func newPKI(t *testing.T) *pki {
	t.Helper()
	p := &pki{dir: t.TempDir()}
	var err error
	if p.ca, err = certs.CreateCA("global", time.Hour); err != nil {
		t.Fatal(err)
	}
	srv, err := certs.CreateCert(p.ca, certs.CertRequest{Cluster: "global", Server: true, ValidFor: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	cli, err := certs.CreateCert(p.ca, certs.CertRequest{Cluster: "global", ValidFor: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		path := filepath.Join(p.dir, name)
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	p.caFile = write("ca.pem", p.ca.Cert)
	p.serverCert, p.serverKey = write("server.pem", srv.Cert), write("server-key.pem", srv.Key)
	p.clientCert, p.clientKey = write("client.pem", cli.Cert), write("client-key.pem", cli.Key)
	return p
}

// productionCluster starts 3 nodes configured like the README's
// production example: ACLs on (the default), exec off (the default),
// mutual TLS on the node plane, HTTPS, and a gossip key.
func productionCluster(t *testing.T) (*testcluster.Cluster, *pki) {
	t.Helper()
	p := newPKI(t)
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	c := testcluster.Start(t, testcluster.Options{Nodes: 3, SecureDefaults: true, Configure: func(_ int, cfg *config.Config) {
		cfg.Serf.Encrypt = base64.StdEncoding.EncodeToString(key)
		cfg.TLS = config.TLS{CAFile: p.caFile, CertFile: p.serverCert, KeyFile: p.serverKey,
			VerifyIncoming: true, VerifyServerHostname: true, HTTP: true, Cluster: "global"}
	}})
	return c, p
}

// attackLayer is a raft StreamLayer as an attacker on the network builds
// it: it dials the node port, optionally completes a TLS handshake with
// the attacker's certificate, and selects raft with the protocol byte.
type attackLayer struct {
	net.Listener
	tls *tls.Config
}

func (l attackLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	conn, err := net.DialTimeout("tcp", string(addr), timeout)
	if err != nil {
		return nil, err
	}
	if l.tls != nil {
		tc := tls.Client(conn, l.tls)
		_ = tc.SetDeadline(time.Now().Add(timeout))
		if err := tc.Handshake(); err != nil {
			conn.Close()
			return nil, err
		}
		_ = tc.SetDeadline(time.Time{})
		conn = tc
	}
	if _, err := conn.Write([]byte{byte(rpc.ProtoRaft)}); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

// rawTransport returns a plain hashicorp/raft transport over attackLayer.
func rawTransport(t *testing.T, tlsCfg *tls.Config) *raft.NetworkTransport {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tr := raft.NewNetworkTransport(attackLayer{Listener: ln, tls: tlsCfg}, 1, 2*time.Second, io.Discard)
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

func term(t *testing.T, n *testcluster.Node) uint64 {
	t.Helper()
	v, err := strconv.ParseUint(n.Agent.Raft().Stats()["term"], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestProductionRefusesNodePlaneAttacks replays issue 11's raft attacks
// against a production-configured cluster: a RequestVote claiming a
// follower's ID with term+100 and an AppendEntries carrying a forged job,
// sent through a plain hashicorp/raft transport without a certificate,
// with a client certificate of the cluster's own CA, and with a
// certificate of another CA. All are refused: the term does not move,
// the leader stays, no forged job appears anywhere.
func TestProductionRefusesNodePlaneAttacks(t *testing.T) {
	c, p := productionCluster(t)
	leader := c.Leader()
	var follower *testcluster.Node
	for _, n := range c.Nodes {
		if n != leader {
			follower = n
			break
		}
	}
	clientPair, err := tls.LoadX509KeyPair(p.clientCert, p.clientKey)
	if err != nil {
		t.Fatal(err)
	}
	otherCA, _ := certs.CreateCA("global", time.Hour)
	otherSrv, _ := certs.CreateCert(otherCA, certs.CertRequest{Cluster: "global", Server: true, ValidFor: time.Hour})
	otherPair, err := tls.X509KeyPair(otherSrv.Cert, otherSrv.Key)
	if err != nil {
		t.Fatal(err)
	}
	attackers := []struct {
		name string
		tls  *tls.Config
	}{
		{"plain TCP", nil},
		{"client certificate of the cluster CA", &tls.Config{Certificates: []tls.Certificate{clientPair}, InsecureSkipVerify: true}},
		{"server certificate of another CA", &tls.Config{Certificates: []tls.Certificate{otherPair}, InsecureSkipVerify: true}},
	}
	startTerm := term(t, leader)
	for _, a := range attackers {
		tr := rawTransport(t, a.tls)
		var vote raft.RequestVoteResponse
		err := tr.RequestVote(raft.ServerID(leader.Agent.NodeID()), raft.ServerAddress(leader.Agent.RaftAddr()), &raft.RequestVoteRequest{
			RPCHeader:          raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte(follower.Agent.NodeID()), Addr: []byte(follower.Agent.RaftAddr())},
			Term:               startTerm + 100,
			LastLogIndex:       leader.Agent.Raft().LastIndex() + 1000,
			LastLogTerm:        startTerm + 100,
			LeadershipTransfer: true,
		}, &vote)
		if err == nil || vote.Granted {
			t.Fatalf("%s: RequestVote answered (granted %v, err %v), want the connection refused", a.name, vote.Granted, err)
		}

		data, err := queue.Encode(queue.Entry{Now: time.Now(), Cmds: []queue.Command{&queue.Submit{
			IDs: []string{"FORGED" + a.name}, Specs: []queue.Spec{{Plugin: "forged"}},
		}}})
		if err != nil {
			t.Fatal(err)
		}
		last, lastTerm := follower.Agent.Raft().LastIndex(), term(t, follower)
		var ae raft.AppendEntriesResponse
		err = tr.AppendEntries(raft.ServerID(follower.Agent.NodeID()), raft.ServerAddress(follower.Agent.RaftAddr()), &raft.AppendEntriesRequest{
			RPCHeader:         raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte(leader.Agent.NodeID()), Addr: []byte(leader.Agent.RaftAddr())},
			Term:              lastTerm,
			PrevLogEntry:      last,
			PrevLogTerm:       lastTerm,
			Entries:           []*raft.Log{{Index: last + 1, Term: lastTerm, Type: raft.LogCommand, Data: data}},
			LeaderCommitIndex: last + 1,
		}, &ae)
		if err == nil || ae.Success {
			t.Fatalf("%s: AppendEntries answered (success %v, err %v), want the connection refused", a.name, ae.Success, err)
		}
	}

	// A legitimate write replicates to every node; then no node holds a
	// forged job and the leader and term never moved.
	mgmt := mgmtClient(t, leader, p)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := mgmt.Submit(ctx, api.JobRequest{Plugin: "nobody-runs-this"})
	if err != nil {
		t.Fatalf("legitimate submit: %v", err)
	}
	for _, n := range c.Nodes {
		c.Eventually(10*time.Second, n.Name+" applies the legitimate submit", func() bool {
			_, ok := n.Agent.Store().Get(res.ID)
			return ok
		})
		for _, j := range n.Agent.Store().List(queue.Filter{}) {
			if j.Plugin == "forged" {
				t.Fatalf("%s stored forged job %s", n.Name, j.ID)
			}
		}
	}
	if c.Leader() != leader || term(t, leader) != startTerm {
		t.Fatalf("leadership moved: term %d -> %d", startTerm, term(t, leader))
	}
}

// mgmtClient bootstraps ACLs and returns an HTTPS client with the
// management token.
func mgmtClient(t *testing.T, n *testcluster.Node, p *pki) *api.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	root, err := n.Client.ACLBootstrap(ctx)
	if err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	c, err := api.NewClient("https://"+n.Agent.HTTPAddr(), root.SecretID)
	if err != nil {
		t.Fatal(err)
	}
	tc, err := certs.ClientConfig(p.caFile, "", "")
	if err != nil {
		t.Fatal(err)
	}
	c.SetTLSConfig(tc)
	return c
}

// TestProductionRefusesAPIAttacks replays the API attacks against a
// production-configured cluster over HTTPS: plain HTTP is not served;
// unauthenticated exec, leave and peer removal get 401; oversized fields
// are refused even for the management token.
func TestProductionRefusesAPIAttacks(t *testing.T) {
	c, p := productionCluster(t)
	leader := c.Leader()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// Plain HTTP to the HTTPS port gets no API answer.
	resp, err := http.Post("http://"+leader.Agent.HTTPAddr()+"/v1/jobs", "application/json", nil)
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("plain HTTP to the HTTPS API: %d", resp.StatusCode)
		}
	}
	anon := leader.Client // HTTPS, trusts the CA, no token
	_, err = anon.Submit(ctx, api.JobRequest{Plugin: "exec", Payload: []byte(`{"command":["sh","-c","id"]}`)})
	assertStatus(t, "unauthenticated exec", err, http.StatusUnauthorized, "queue:write")
	for _, n := range c.Nodes {
		if n != leader {
			assertStatus(t, "unauthenticated remove-peer", anon.RemovePeer(ctx, n.Agent.NodeID()), http.StatusUnauthorized, "operator:write")
			assertStatus(t, "unauthenticated leave", n.Client.Leave(ctx), http.StatusUnauthorized, "agent:write")
		}
	}
	if got := voters(t, leader); got != 3 {
		t.Fatalf("%d voters, want 3", got)
	}
	mgmt := mgmtClient(t, leader, p)
	checkRefused(t, ctx, &testcluster.Node{Name: leader.Name, Agent: leader.Agent, Client: mgmt})
	if n := len(leader.Agent.Store().List(queue.Filter{Queue: queue.DefaultQueue})); n != 0 {
		t.Fatalf("%d jobs in the default queue after refused submits", n)
	}
}
