package radius_test

import (
	"github.com/totpbox/totpbox/internal/testkit"

	"net"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"

	rad "github.com/totpbox/totpbox/enroll/server/radius"
)

// need returns the path of a program from a Debian package, skipping the
// test when it is missing, or failing it when TOTPBOX_REQUIRE_PARTS=1.
func need(t *testing.T, program, pkg string) string {
	t.Helper()
	return testkit.RequireProgram(t, program, pkg)
}

// radclient sends one Access-Request with attrs (radclient's syntax) to
// addr with FreeRADIUS's radclient, one try of two seconds unless extra
// says otherwise, and returns what it printed.
func radclient(t *testing.T, addr, secret, attrs string, extra ...string) string {
	t.Helper()
	args := append([]string{"-x", "-r", "1", "-t", "2"}, extra...)
	cmd := exec.Command(need(t, "radclient", "freeradius-utils"), append(args, addr, "auth", secret)...)
	cmd.Stdin = strings.NewReader(attrs)
	out, _ := cmd.CombinedOutput() // its exit status says only whether the reply was an Accept
	return string(out)
}

// received is the code of the reply radclient printed, or "none".
func received(out string) string {
	if m := regexp.MustCompile(`Received (Access-[A-Za-z]+)`).FindStringSubmatch(out); m != nil {
		return m[1]
	}
	return "none"
}

func TestRadclient(t *testing.T) {
	need(t, "radclient", "freeradius-utils")
	r := newRig(t, nil)
	k := r.user("alice", "")
	good := r.code(k)
	ask := func(user, code, secret string, ma bool) string {
		attrs := `User-Name = "` + user + `", User-Password = "` + code + `", NAS-Identifier = "vpn"`
		if ma {
			attrs += ", Message-Authenticator = 0x00"
		}
		return radclient(t, r.addr, secret, attrs)
	}
	// radclient checks the Response Authenticator and the reply's
	// Message-Authenticator, so an Accept here means both were right.
	if out := ask("alice", good, testSecret, true); received(out) != "Access-Accept" {
		t.Fatalf("good code: radclient printed\n%s\nwant an Access-Accept", out)
	}
	for _, tc := range []struct {
		name, user, code, secret string
		ma                       bool
		want                     string
	}{
		{"replay", "alice", good, testSecret, true, "Access-Reject"},
		{"wrong code", "alice", "000000", testSecret, true, "Access-Reject"},
		{"unknown user", "mallory", good, testSecret, true, "Access-Reject"},
		{"bad shared secret", "alice", good, "wrong-secret", true, "none"},
		{"no Message-Authenticator", "alice", good, testSecret, false, "none"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if out := ask(tc.user, tc.code, tc.secret, tc.ma); received(out) != tc.want {
				t.Errorf("radclient printed\n%s\nwant %s", out, tc.want)
			}
		})
	}
	if got := r.metric(`totpserver_radius_dropped_total{client="vpn",reason="bad_message_authenticator"}`); got != 1 {
		t.Errorf("dropped bad_message_authenticator = %v, want 1", got)
	}
	if got := r.metric(`totpserver_radius_dropped_total{client="vpn",reason="no_message_authenticator"}`); got != 1 {
		t.Errorf("dropped no_message_authenticator = %v, want 1", got)
	}
}

func TestRadclientChallenge(t *testing.T) {
	need(t, "radclient", "freeradius-utils")
	r := newRig(t, func(c *rad.Config) { c.Clients[0].Mode = rad.ModePasswordCode })
	k := r.user("alice", "correct horse 12")
	out := radclient(t, r.addr, testSecret, `User-Name = "alice", User-Password = "correct horse 12", Message-Authenticator = 0x00`)
	if received(out) != "Access-Challenge" {
		t.Fatalf("password alone: radclient printed\n%s\nwant an Access-Challenge", out)
	}
	m := regexp.MustCompile(`State = (0x[0-9a-f]+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("challenge without State:\n%s", out)
	}
	out = radclient(t, r.addr, testSecret, `User-Name = "alice", User-Password = "`+r.code(k)+`", State = `+m[1]+`, Message-Authenticator = 0x00`)
	if received(out) != "Access-Accept" {
		t.Fatalf("code with the State: radclient printed\n%s\nwant an Access-Accept", out)
	}
}

// lossyProxy forwards datagrams between one client and the server at
// upstream from a single socket, dropping the server's first reply, so
// that the client retransmits.
func lossyProxy(t *testing.T, upstream string) string {
	t.Helper()
	front, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	back, err := net.Dial("udp", upstream)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { front.Close(); back.Close() })
	var mu sync.Mutex
	var client net.Addr
	go func() {
		buf := make([]byte, 4096)
		for {
			n, from, err := front.ReadFrom(buf)
			if err != nil {
				return
			}
			mu.Lock()
			client = from
			mu.Unlock()
			back.Write(buf[:n])
		}
	}()
	go func() {
		buf := make([]byte, 4096)
		for first := true; ; first = false {
			n, err := back.Read(buf)
			if err != nil {
				return
			}
			if first {
				continue
			}
			mu.Lock()
			to := client
			mu.Unlock()
			front.WriteTo(buf[:n], to)
		}
	}()
	return front.LocalAddr().String()
}

func TestRadclientRetransmit(t *testing.T) {
	need(t, "radclient", "freeradius-utils")
	r := newRig(t, nil)
	k := r.user("alice", "")
	proxy := lossyProxy(t, r.addr)
	out := radclient(t, proxy, testSecret, `User-Name = "alice", User-Password = "`+r.code(k)+`", Message-Authenticator = 0x00`, "-r", "3", "-t", "1")
	if received(out) != "Access-Accept" {
		t.Fatalf("radclient printed\n%s\nwant an Access-Accept after a retransmission", out)
	}
	if got := r.metric(`totpserver_radius_retransmits_total{client="vpn"}`); got != 1 {
		t.Errorf("retransmits = %v, want 1", got)
	}
	if got := r.metric(`totpserver_verifies_total{result="ok"}`) + r.metric(`totpserver_verifies_total{result="replay"}`); got != 1 {
		t.Errorf("verifies = %v, want 1: the retransmission was verified again", got)
	}
}
