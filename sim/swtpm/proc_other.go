//go:build !linux

package swtpm

import "os/exec"

// dieWithParent does nothing where the kernel offers no parent-death
// signal: Stop is the only way swtpm ends.
func dieWithParent(*exec.Cmd) {}
