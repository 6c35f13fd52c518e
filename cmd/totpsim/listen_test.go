package main

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/totpbox/totpbox/device/tpm/tpmtest"
)

// TestBusyPortNamesTheFlag: when an address is taken, the error says which
// part could not listen and the flag that moves it.
func TestBusyPortNamesTheFlag(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	addr := busy.Addr().String()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"server", []string{"--server-listen", addr, "--listen", "127.0.0.1:0"},
			"the registration server (console) cannot listen on " + addr},
		{"page", []string{"--no-server", "--listen", addr},
			"the simulator page cannot listen on " + addr},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			root := newRoot(&out, &errOut)
			root.SetArgs(append([]string{"serve", "--tpm", "none", "--appliances", "1", "--data", filepath.Join(t.TempDir(), "d")}, tc.args...))
			err := root.Execute()
			if err == nil {
				t.Fatalf("serve on a busy address succeeded")
			}
			flag := "--listen"
			if tc.name == "server" {
				flag = "--server-listen"
			}
			for _, want := range []string{tc.want, "another program uses it", "choose another address with " + flag + ","} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
		})
	}
}

// TestBusyPortLeavesNothingRunning: a simulator that cannot listen on its
// page's address exits having stopped every appliance's swtpm and removed
// the temporary directories it made (their sockets).
func TestBusyPortLeavesNothingRunning(t *testing.T) {
	tpmtest.Require(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // where the simulator makes its temporary directories
	data := filepath.Join(t.TempDir(), "d")
	var out, errOut bytes.Buffer
	root := newRoot(&out, &errOut)
	root.SetArgs([]string{"serve", "--no-server", "--appliances", "2", "--data", data, "--listen", busy.Addr().String()})
	if err := root.Execute(); err == nil || !strings.Contains(err.Error(), "cannot listen on") {
		t.Fatalf("serve on a busy address = %v, want the listen error", err)
	}
	if kids := children(t, "swtpm"); len(kids) > 0 {
		t.Errorf("swtpm still running after the simulator exited: pids %v", kids)
	}
	left, err := os.ReadDir(tmp)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range left {
		t.Errorf("left behind in the temporary directory: %s", e.Name())
	}
	if _, err := os.Stat(filepath.Clean(data) + "-tpm"); err != nil {
		t.Errorf("the TPMs' state (kept across runs) is gone: %v", err)
	}
}

// children returns the pids of this process's children named comm, as
// /proc lists them.
func children(t *testing.T, comm string) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Skip("no /proc:", err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid ...
		s := string(stat)
		i := strings.LastIndexByte(s, ')')
		if i < 0 || !strings.HasPrefix(s[strings.IndexByte(s, '(')+1:], comm+")") {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) > 1 && f[1] == strconv.Itoa(os.Getpid()) && f[0] != "Z" {
			pids = append(pids, pid)
		}
	}
	return pids
}
