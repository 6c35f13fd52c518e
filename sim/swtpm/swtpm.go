// Package swtpm starts swtpm, a TPM 2.0 emulator (Debian package swtpm),
// on a unix socket: the simulator gives each appliance one, and the tests
// use it as a real TPM. Its state lives in a directory of its own, apart
// from the appliance's state, as a TPM's lives on its chip.
package swtpm

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// Path is the swtpm binary looked up on $PATH.
const Path = "swtpm"

// Available reports whether swtpm is installed.
func Available() bool {
	_, err := exec.LookPath(Path)
	return err == nil
}

// Emulator is a running swtpm.
type Emulator struct {
	// Addr is the address to give tpm.Open: "unix:" and the socket path.
	Addr string
	// StateDir holds the emulated TPM's persistent state (its seeds).
	StateDir string

	cmd  *exec.Cmd
	done chan error
}

// Start starts swtpm with its state in stateDir (created 0700) and its
// command socket in sockDir, and waits until it accepts connections. The same
// stateDir gives the same TPM (the same seeds) at every start.
func Start(stateDir, sockDir string) (*Emulator, error) {
	bin, err := exec.LookPath(Path)
	if err != nil {
		return nil, fmt.Errorf("swtpm: %w (install the swtpm package)", err)
	}
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return nil, fmt.Errorf("swtpm: %w", err)
	}
	sock := filepath.Join(sockDir, "swtpm.sock")
	ctrl := filepath.Join(sockDir, "swtpm.ctrl")
	os.Remove(sock)
	os.Remove(ctrl)
	cmd := exec.Command(bin, "socket", "--tpm2",
		"--server", "type=unixio,path="+sock,
		"--ctrl", "type=unixio,path="+ctrl,
		"--tpmstate", "dir="+stateDir,
		"--flags", "not-need-init,startup-clear")
	out, err := os.CreateTemp("", "swtpm-log")
	if err != nil {
		return nil, fmt.Errorf("swtpm: %w", err)
	}
	os.Remove(out.Name())
	cmd.Stdout, cmd.Stderr = out, out
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, fmt.Errorf("swtpm: %w", err)
	}
	e := &Emulator{Addr: "unix:" + sock, StateDir: stateDir, cmd: cmd, done: make(chan error, 1)}
	go func() { e.done <- cmd.Wait(); out.Close() }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		// The socket file appears at bind, before swtpm listens: wait
		// until a connection is accepted.
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			return e, nil
		}
		select {
		case err := <-e.done:
			out.Seek(0, 0)
			msg := make([]byte, 512)
			n, _ := out.Read(msg)
			return nil, fmt.Errorf("swtpm exited at start: %v: %s", err, msg[:n])
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			e.Stop()
			return nil, errors.New("swtpm: socket did not appear within 10s")
		}
	}
}

// Stop ends swtpm and waits for it; its state stays in StateDir.
func (e *Emulator) Stop() error {
	if e.cmd.Process == nil {
		return nil
	}
	e.cmd.Process.Signal(os.Interrupt)
	select {
	case <-e.done:
	case <-time.After(5 * time.Second):
		e.cmd.Process.Kill()
		<-e.done
	}
	return nil
}
