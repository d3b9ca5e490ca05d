// Package discovery turns Serf gossip membership into Raft membership.
//
// Every Corral node runs an [Agent]: a Serf member whose tags advertise the
// node's ID, Raft and HTTP addresses, bootstrap-expect value and installed
// plugins. A [Manager] on every node reads the agent's member events in one
// event loop. While the cluster has no Raft configuration it bootstraps Raft
// once bootstrap_expect servers agree; on the Raft leader it reconciles the
// Serf member list into the Raft configuration: alive servers are added as
// non-voters, servers that leave gracefully are removed at once, and failed
// servers are reported through a callback and later removed by
// raft-autopilot's dead-server cleanup, which also promotes stable
// non-voters to voters up to a configured maximum.
//
// The daemon owns the raft.Raft instance and the leadership watch; it calls
// [Manager.LeaderStart] after a successful Barrier and [Manager.LeaderStop]
// when leadership is lost.
package discovery
