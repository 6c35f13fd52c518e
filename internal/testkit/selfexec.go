package testkit

import (
	"fmt"
	"os"
	"os/exec"
)

// Interpreter returns the program the running binary is interpreted by, or
// "" when it runs natively. Under qemu-user (go test -exec qemu-arm) the
// kernel runs qemu, which presents the binary as the process's own
// executable (/proc/self/exe names the test binary) while
// /proc/thread-self/exe, which qemu leaves alone, names qemu itself.
func Interpreter() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("testkit: finding the test binary: %w", err)
	}
	real, err := os.Readlink("/proc/thread-self/exe")
	if err != nil {
		// No procfs (not Linux, or a sandbox): nothing interprets us that
		// we could see.
		return "", nil
	}
	if real == exe {
		return "", nil
	}
	return real, nil
}

// SelfCommand returns a command that runs the test binary again with args,
// under the same interpreter as the running test when there is one, so a
// test that re-executes itself (to kill a child mid-write, to drop
// privileges in a child) runs the same under qemu-user as on the machine
// it was built for.
func SelfCommand(args ...string) (*exec.Cmd, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("testkit: finding the test binary: %w", err)
	}
	return InterpretedCommand(exe, args...)
}

// InterpretedCommand returns a command that runs bin, a binary built like
// the running test (a copy of the test binary, say), with args, under the
// interpreter the running test runs under, if any.
func InterpretedCommand(bin string, args ...string) (*exec.Cmd, error) {
	interp, err := Interpreter()
	if err != nil {
		return nil, err
	}
	if interp == "" {
		return exec.Command(bin, args...), nil
	}
	return exec.Command(interp, append([]string{bin}, args...)...), nil
}
