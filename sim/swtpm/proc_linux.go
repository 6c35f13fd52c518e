package swtpm

import (
	"os/exec"
	"syscall"
)

// dieWithParent has the kernel stop swtpm when the process that started
// it dies without stopping it (SIGKILL): no emulator is left running under
// PID 1.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
