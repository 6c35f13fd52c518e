package main

import (
	"bytes"
	"net"
	"path/filepath"
	"strings"
	"testing"
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
