package main

import "syscall"

// agentProcAttr puts an agent in its own process group (signals reach its
// plugins too) and kills it if the harness dies.
func agentProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
