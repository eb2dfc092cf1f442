package goclients

import "syscall"

// childProcAttr makes the kernel kill the server if the test binary dies without running
// its cleanups (for example when `go test -timeout` aborts it), so no server outlives the
// suite. (Pdeathsig follows the OS thread that started the child; the Go runtime keeps its
// threads unless a goroutine locked to one exits, which these tests never do.)
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
