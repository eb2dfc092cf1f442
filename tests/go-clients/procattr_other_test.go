//go:build !linux

package goclients

import "syscall"

// childProcAttr: no parent-death signal outside Linux; the test cleanups stop the server.
func childProcAttr() *syscall.SysProcAttr { return nil }
