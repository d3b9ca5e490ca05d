//go:build !linux

package main

import "syscall"

// agentProcAttr puts an agent in its own process group (signals reach its
// plugins too).
func agentProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
