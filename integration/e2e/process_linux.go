package e2e

import "syscall"

// childAttrs makes a child die with the run's process, even if that is
// killed before it can stop its children.
func childAttrs() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
