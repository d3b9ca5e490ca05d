package daemon

import (
	"time"

	"go.etcd.io/bbolt"
)

// boltOptions makes a second agent on the same data dir fail fast instead
// of waiting forever for the file lock.
func boltOptions() *bbolt.Options {
	return &bbolt.Options{Timeout: 2 * time.Second}
}
