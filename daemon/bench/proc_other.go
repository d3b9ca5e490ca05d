//go:build unix && !linux

package bench

import (
	"syscall"
	"time"
)

// childAttr puts an agent in its own process group so Stop can kill its
// plugins with it.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// groupCPU is not available without /proc.
func groupCPU([]int) (leaders, others time.Duration, ok bool) { return 0, 0, false }
