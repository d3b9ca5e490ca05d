package bench

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// childAttr puts an agent in its own process group (so Stop can kill its
// plugins with it) and has the kernel kill it if this process dies.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// clockTick is the unit of utime and stime in /proc/PID/stat (USER_HZ,
// 100 on every Linux architecture Go supports).
const clockTick = 10 * time.Millisecond

// groupCPU returns the CPU time (user + system) used so far by the live
// processes of the given process groups, read from /proc: leaders by the
// group leaders themselves (the agents), others by the rest (their
// plugins). ok is false when /proc cannot be read.
func groupCPU(pgids []int) (leaders, others time.Duration, ok bool) {
	want := make(map[int]bool, len(pgids))
	for _, p := range pgids {
		want[p] = true
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, 0, false
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // gone
		}
		// The command name (field 2) may hold spaces; fields after its
		// closing parenthesis are: state ppid pgrp ... utime(14) stime(15).
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := bytes.Fields(b[i+1:])
		if len(f) < 13 {
			continue
		}
		pgrp, _ := strconv.Atoi(string(f[2]))
		if !want[pgrp] {
			continue
		}
		utime, _ := strconv.ParseInt(string(f[11]), 10, 64)
		stime, _ := strconv.ParseInt(string(f[12]), 10, 64)
		used := time.Duration(utime+stime) * clockTick
		if pid == pgrp {
			leaders += used
		} else {
			others += used
		}
	}
	return leaders, others, true
}
