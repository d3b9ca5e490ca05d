package raftnode

import (
	"time"

	"go.etcd.io/bbolt"
)

// boltOptions for raft.db: a second agent on the same data dir fails fast
// instead of waiting forever for the file lock, and the freelist is not
// written on every commit (as Consul does for its raft store): less to
// write and fsync per raft batch, at the price of a freelist scan on open.
func boltOptions() *bbolt.Options {
	return &bbolt.Options{Timeout: 2 * time.Second, NoFreelistSync: true}
}
