package localapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// squat listens on path like a local user who bound the daemon's socket
// first, and returns a channel that gets everything each connection sent.
func squat(t *testing.T, path string) <-chan string {
	t.Helper()
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	got := make(chan string, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				// Answer like an API so that a trusting client finishes.
				buf := make([]byte, 4096)
				n, _ := c.Read(buf)
				got <- string(buf[:n])
				io.WriteString(c, "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
			}()
		}
	}()
	return got
}

// TestClientRefusesUntrustedPeer: a client sends nothing, not even the
// request line, to a socket served by a user it does not trust, and says
// which uid serves which path. The test runs as one user (often root), so
// the squatter is that same user and "another user" is simulated by
// leaving the test's uid out of the trusted set: this proves the client
// acts on the uid SO_PEERCRED reports; TestSquatterAsAnotherUser in
// cmd/totpctl runs a squatter as a real other user when the tests run as
// root.
func TestClientRefusesUntrustedPeer(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("SO_PEERCRED is Linux's")
	}
	sock := filepath.Join(t.TempDir(), "totpd.sock")
	got := squat(t, sock)
	me := os.Geteuid()
	add := AddRequest{Secret: secret, Issuer: "Bank", Name: "alice"}

	err := NewClientTrusting(sock, []int{me + 1000}).Do(context.Background(), "POST", "/v1/accounts", add, nil)
	var pe *PeerError
	if !errors.As(err, &pe) || pe.UID != me {
		t.Fatalf("Do against a socket served by uid %d, trusting only %d = %v, want a *PeerError", me, me+1000, err)
	}
	msg := err.Error()
	for _, want := range []string{sock, fmt.Sprintf("uid %d", me), "nothing sent"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, "\n") || strings.Contains(msg, secret) {
		t.Errorf("error %q: want one line without the secret", msg)
	}

	// The same socket, trusted: the request reaches it. So the check above
	// is what kept it from being sent (the squatter read every connection).
	if err := NewClientTrusting(sock, []int{me}).Do(context.Background(), "POST", "/v1/accounts", add, nil); err != nil {
		t.Fatalf("Do trusting uid %d = %v", me, err)
	}
	// Two connections reached the squatter: the refused one must have
	// carried nothing, the trusted one the request.
	sent := []string{<-got, <-got}
	if n := strings.Count(sent[0]+sent[1], secret); n != 1 || (sent[0] != "" && sent[1] != "") {
		t.Fatalf("the squatter read %q; want one empty connection (refused) and one add request (trusted)", sent)
	}
}

func TestTrustedUIDs(t *testing.T) {
	uids, err := TrustedUIDs("4321")
	if err != nil || len(uids) != 3 || uids[0] != 0 || uids[1] != os.Geteuid() || uids[2] != 4321 {
		t.Errorf("TrustedUIDs(4321) = %v, %v; want root, you and 4321", uids, err)
	}
	if uids, err := TrustedUIDs("root"); err != nil || uids[2] != 0 {
		t.Errorf("TrustedUIDs(root) = %v, %v", uids, err)
	}
	if _, err := TrustedUIDs("no-such-user-totpbox"); err == nil || !strings.Contains(err.Error(), "no-such-user-totpbox") {
		t.Errorf("TrustedUIDs of an unknown user = %v, want an error naming it", err)
	}
	// nobody is shared with other services: any of them could have bound
	// the socket (issue 22, item 7).
	for _, u := range []string{"65534", "nobody"} {
		if uids, err := TrustedUIDs(u); err == nil || !strings.Contains(err.Error(), "65534") || !strings.Contains(err.Error(), "a user of its own") {
			t.Errorf("TrustedUIDs(%s) = %v, %v; want an error: nobody is shared", u, uids, err)
		}
	}
	_, lookupErr := user.Lookup(DefaultDaemonUser)
	if uids, err := TrustedUIDs(""); err != nil || len(uids) != 3 && lookupErr == nil || len(uids) != 2 && lookupErr != nil {
		t.Errorf("TrustedUIDs() = %v, %v; want root, you and %s where it exists", uids, err, DefaultDaemonUser)
	}
}

// TestCheckSocketDir: a socket directory that group or others may write
// is refused, sticky or not, with the fix in one line; so is a missing one
// under such a parent; a private one passes.
func TestCheckSocketDir(t *testing.T) {
	mk := func(mode os.FileMode) string {
		d := filepath.Join(t.TempDir(), "d")
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d, mode); err != nil {
			t.Fatal(err)
		}
		return d
	}
	for _, tt := range []struct {
		name string
		path string
		want string // "" for fine
	}{
		{"private", filepath.Join(mk(0o700), "totpd.sock"), ""},
		{"readable", filepath.Join(mk(0o755), "totpd.sock"), ""},
		{"missing under private", filepath.Join(mk(0o700), "run", "totpd.sock"), ""},
		{"group writable", filepath.Join(mk(0o770), "totpd.sock"), "(mode 0770) is writable by group or others"},
		{"world writable", filepath.Join(mk(0o777), "totpd.sock"), "chmod go-w"},
		{"sticky like /tmp", filepath.Join(mk(0o777|os.ModeSticky), "totpd.sock"), "(mode 1777)"},
		{"missing under shared", filepath.Join(mk(0o777|os.ModeSticky), "run", "totpd.sock"), "does not exist and"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckSocketDir(tt.path)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("CheckSocketDir(%s) = %v, want nil", tt.path, err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("CheckSocketDir(%s) = %v, want an error containing %q", tt.path, err, tt.want)
			case err != nil && strings.Contains(err.Error(), "\n"):
				t.Errorf("CheckSocketDir(%s) = %q, want one line", tt.path, err)
			}
			if tt.want == "" {
				return
			}
			if ln, err := Listen(tt.path); err == nil {
				ln.Close()
				t.Errorf("Listen(%s) succeeded in a directory others may write", tt.path)
			}
		})
	}
}
