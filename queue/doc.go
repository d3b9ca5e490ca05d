// Package queue is Corral's replicated job queue: the job model, the
// commands that change it, and the deterministic state machine that applies
// them. It is pure: no network, no goroutines of its own, and no wall clock
// inside Apply (time comes from Entry.Now, stamped by the leader).
//
// The daemon wraps a Store in a raft.FSM adapter: raft's Apply forwards
// (index, data) to Store.Apply, Snapshot to Store.Snapshot and Restore to
// Store.Restore. Reads (Get, List, Queues, ...) may run concurrently with
// Apply from any goroutine.
package queue
