package radius_test

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"

	"github.com/totpbox/totpbox/enroll"
	rad "github.com/totpbox/totpbox/enroll/server/radius"
)

func TestCodeMode(t *testing.T) {
	r := newRig(t, nil)
	k := r.user("alice", "")
	good := r.code(k)

	if got := r.ask(request(testSecret, "alice", good)).Code; got != radius.CodeAccessAccept {
		t.Fatalf("good code: %v, want Access-Accept", got)
	}
	for _, tc := range []struct {
		name, user, code, result string
	}{
		{"replay", "alice", good, "replay"},
		{"wrong code", "alice", enroll.CodeAt(k, enroll.Step(k, r.clock.Now())+7), "invalid"},
		{"not digits", "alice", "abcdef", "invalid"},
		{"unknown user", "mallory", good, "unknown_user"},
		{"bad user name", "", good, "bad_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := r.metric(`totpserver_radius_requests_total{client="vpn",result="` + tc.result + `"}`)
			if got := r.ask(request(testSecret, tc.user, tc.code)).Code; got != radius.CodeAccessReject {
				t.Fatalf("%s: %v, want Access-Reject", tc.name, got)
			}
			if after := r.metric(`totpserver_radius_requests_total{client="vpn",result="` + tc.result + `"}`); after != before+1 {
				t.Errorf("requests{result=%q} went from %v to %v, want +1", tc.result, before, after)
			}
		})
	}
	if got := r.metric(`totpserver_radius_requests_total{client="vpn",result="accept"}`); got != 1 {
		t.Errorf("accepts = %v, want 1", got)
	}
	// The same verify operation as the JSON API: its own counter moved.
	if got := r.metric(`totpserver_verifies_total{result="ok"}`); got != 1 {
		t.Errorf("core verifies ok = %v, want 1", got)
	}
	if got := r.metric(`totpserver_verifies_total{result="replay"}`); got != 1 {
		t.Errorf("core verifies replay = %v, want 1", got)
	}
	if !r.auditHas("radius.accept", "radius:vpn", "user:alice", "127.0.0.1") {
		t.Error("no radius.accept audit row naming the client")
	}
	r.rad.FlushRejects(context.Background()) // rejects are written a minute at a time
	if !r.auditHas("verify.replay", "radius:vpn", "user:alice", "127.0.0.1") && !r.auditHas("radius.reject", "radius:vpn", "user:alice", "127.0.0.1") {
		t.Error("no audit row of the replay naming the client")
	}
}

func TestDroppedRequests(t *testing.T) {
	r := newRig(t, func(c *rad.Config) {
		c.Clients = append(c.Clients, rad.Client{Name: "other", Prefix: netip.MustParsePrefix("10.0.0.0/8"), Secret: []byte("x"), Mode: rad.ModeCode})
		// Only 127.0.0.2 is a client: 127.0.0.1 is unknown.
		c.Clients[0].Prefix = netip.MustParsePrefix("127.0.0.2/32")
	})
	k := r.user("alice", "")
	p := request(testSecret, "alice", r.code(k))
	raw, _ := rad.SignRequest(p)
	if rep := r.send(raw, testSecret, 300*time.Millisecond); rep != nil {
		t.Fatalf("request from an unknown address answered: %v", rep.Code)
	}
	if got := r.metric(`totpserver_radius_dropped_total{client="unknown",reason="unknown_client"}`); got != 1 {
		t.Errorf("dropped unknown_client = %v, want 1", got)
	}

	// From the client's address (127.0.0.2): no Message-Authenticator,
	// or one made with another secret, is dropped and never verified.
	from := func(raw []byte, secret string) *radius.Packet {
		conn, err := net.DialUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)}, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(r.addr)))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return exchangeOn(t, conn, raw, secret, 300*time.Millisecond)
	}
	noMA, _ := request(testSecret, "alice", r.code(k)).Encode()
	if rep := from(noMA, testSecret); rep != nil {
		t.Fatalf("request without Message-Authenticator answered: %v", rep.Code)
	}
	wrong, _ := rad.SignRequest(request("not the secret", "alice", r.code(k)))
	if rep := from(wrong, "not the secret"); rep != nil {
		t.Fatalf("request with a wrong secret answered: %v", rep.Code)
	}
	for _, reason := range []string{"no_message_authenticator", "bad_message_authenticator"} {
		if got := r.metric(`totpserver_radius_dropped_total{client="vpn",reason="` + reason + `"}`); got != 1 {
			t.Errorf("dropped %s = %v, want 1", reason, got)
		}
	}
	if got := r.metric(`totpserver_verifies_total{result="invalid"}`) + r.metric(`totpserver_verifies_total{result="ok"}`); got != 0 {
		t.Errorf("dropped requests reached verify %v times", got)
	}
	good, _ := rad.SignRequest(request(testSecret, "alice", r.code(k)))
	if rep := from(good, testSecret); rep == nil || rep.Code != radius.CodeAccessAccept {
		t.Fatalf("good request from the client's address: %v, want Access-Accept", rep)
	}
}

func TestMissingMessageAuthenticatorAllowed(t *testing.T) {
	r := newRig(t, func(c *rad.Config) { c.Clients[0].AllowMissingMessageAuthenticator = true })
	k := r.user("alice", "")
	raw, _ := request(testSecret, "alice", r.code(k)).Encode()
	rep := r.send(raw, testSecret, 10*time.Second)
	if rep == nil || rep.Code != radius.CodeAccessAccept {
		t.Fatalf("reply = %v, want Access-Accept", rep)
	}
	// A wrong secret garbles the password: refused (in a reply the NAS
	// cannot check), never accepted.
	r.clock.Advance(30 * time.Second)
	raw, _ = request("not the secret", "alice", r.code(k)).Encode()
	if rep := r.send(raw, testSecret, 10*time.Second); rep == nil || rep.Code != radius.CodeAccessReject {
		t.Fatalf("request with a wrong secret: %v, want Access-Reject", rep)
	}
}

func TestRetransmitAnsweredFromCache(t *testing.T) {
	r := newRig(t, nil)
	k := r.user("alice", "")
	raw, _ := rad.SignRequest(request(testSecret, "alice", r.code(k)))
	conn, err := net.Dial("udp", r.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	first := exchangeOn(t, conn, raw, testSecret, 10*time.Second)
	again := exchangeOn(t, conn, raw, testSecret, 10*time.Second)
	if first == nil || again == nil || first.Code != radius.CodeAccessAccept || again.Code != radius.CodeAccessAccept {
		t.Fatalf("replies = %v, %v, want two Access-Accepts", first, again)
	}
	if first.Authenticator != again.Authenticator {
		t.Error("the retransmission's reply differs from the first")
	}
	if got := r.metric(`totpserver_verifies_total{result="ok"}`); got != 1 {
		t.Errorf("verifies = %v, want 1: a retransmission was verified again", got)
	}
	if got := r.metric(`totpserver_radius_retransmits_total{client="vpn"}`); got != 1 {
		t.Errorf("retransmits = %v, want 1", got)
	}
}

func TestReplyCacheExpires(t *testing.T) {
	r := newRig(t, func(c *rad.Config) { c.ReplyCacheTTL = time.Second })
	k := r.user("alice", "")
	raw, _ := rad.SignRequest(request(testSecret, "alice", r.code(k)))
	conn, err := net.Dial("udp", r.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if rep := exchangeOn(t, conn, raw, testSecret, 10*time.Second); rep == nil || rep.Code != radius.CodeAccessAccept {
		t.Fatalf("first = %v, want Access-Accept", rep)
	}
	r.clock.Advance(2 * time.Second)
	if rep := exchangeOn(t, conn, raw, testSecret, 10*time.Second); rep == nil || rep.Code != radius.CodeAccessReject {
		t.Fatalf("same request after the cache's time = %v, want Access-Reject (a replay)", rep)
	}
}

func TestPasswordAndCode(t *testing.T) {
	r := newRig(t, func(c *rad.Config) {
		c.Clients[0].Mode = rad.ModePasswordCode
		c.ChallengeTimeout = time.Minute
	})
	k := r.user("alice", "correct horse 12")

	// Password and code in one field.
	if got := r.ask(request(testSecret, "alice", "correct horse 12"+r.code(k))).Code; got != radius.CodeAccessAccept {
		t.Fatalf("password+code: %v, want Access-Accept", got)
	}
	r.clock.Advance(30 * time.Second)
	if got := r.ask(request(testSecret, "alice", "wrong horse 12"+r.code(k))).Code; got != radius.CodeAccessReject {
		t.Fatalf("wrong password+good code: %v, want Access-Reject", got)
	}
	// The refused password did not spend the code.
	if got := r.ask(request(testSecret, "alice", "correct horse 12"+r.code(k))).Code; got != radius.CodeAccessAccept {
		t.Fatalf("password+code after a wrong password: %v, want Access-Accept", got)
	}
	r.clock.Advance(30 * time.Second)

	// Password alone: a challenge, answered with the code and the State.
	ch := r.ask(request(testSecret, "alice", "correct horse 12"))
	if ch.Code != radius.CodeAccessChallenge {
		t.Fatalf("password alone: %v, want Access-Challenge", ch.Code)
	}
	state := rfc2865.State_Get(ch)
	if len(state) == 0 || rfc2865.ReplyMessage_GetString(ch) == "" {
		t.Fatalf("challenge without State or Reply-Message: %v", ch.Attributes)
	}
	answer := func(user, code string, state []byte) radius.Code {
		p := request(testSecret, user, code)
		rfc2865.State_Set(p, state)
		return r.ask(p).Code
	}
	if got := answer("bob", r.code(k), state); got != radius.CodeAccessReject {
		t.Fatalf("State answered for another user: %v, want Access-Reject", got)
	}
	// The State was spent by the wrong answer; a new challenge.
	state = rfc2865.State_Get(r.ask(request(testSecret, "alice", "correct horse 12")))
	if got := answer("alice", r.code(k), state); got != radius.CodeAccessAccept {
		t.Fatalf("code after the challenge: %v, want Access-Accept", got)
	}
	r.clock.Advance(30 * time.Second)
	if got := answer("alice", r.code(k), state); got != radius.CodeAccessReject {
		t.Fatalf("State used twice: %v, want Access-Reject", got)
	}
	// A challenge times out.
	state = rfc2865.State_Get(r.ask(request(testSecret, "alice", "correct horse 12")))
	r.clock.Advance(61 * time.Second)
	if got := answer("alice", r.code(k), state); got != radius.CodeAccessReject {
		t.Fatalf("code after the challenge timed out: %v, want Access-Reject", got)
	}
	if got := r.ask(request(testSecret, "alice", "wrong password")).Code; got != radius.CodeAccessReject {
		t.Fatalf("wrong password alone: %v, want Access-Reject", got)
	}
	if got := r.ask(request(testSecret, "nobody", "correct horse 12")).Code; got != radius.CodeAccessReject {
		t.Fatalf("unknown user: %v, want Access-Reject", got)
	}
	if got := r.metric(`totpserver_radius_requests_total{client="vpn",result="challenge"}`); got != 3 {
		t.Errorf("challenges = %v, want 3", got)
	}
	if got := r.metric(`totpserver_radius_requests_total{client="vpn",result="bad_state"}`); got != 3 {
		t.Errorf("bad_state = %v, want 3", got)
	}
}

func TestPasswordLimit(t *testing.T) {
	r := newRig(t, func(c *rad.Config) {
		c.Clients[0].Mode = rad.ModePasswordCode
		c.PasswordPerUser = rad.Rate{PerSecond: 0.01, Burst: 2}
	})
	k := r.user("alice", "correct horse 12")
	for range 2 {
		r.ask(request(testSecret, "alice", "guess"))
	}
	if got := r.ask(request(testSecret, "alice", "correct horse 12"+r.code(k))).Code; got != radius.CodeAccessReject {
		t.Fatalf("third attempt within the limit: %v, want Access-Reject", got)
	}
	if got := r.metric(`totpserver_radius_requests_total{client="vpn",result="rate_limited"}`); got != 1 {
		t.Errorf("rate_limited = %v, want 1", got)
	}
}

func TestLockoutThroughRADIUS(t *testing.T) {
	r := newRig(t, nil)
	k := r.user("alice", "")
	st, err := r.core.Settings(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	wrong := enroll.CodeAt(k, enroll.Step(k, r.clock.Now())+9)
	for range st.LockoutThreshold {
		r.ask(request(testSecret, "alice", wrong))
	}
	// Past the per-user verify limit's refill, within the lockout.
	r.clock.Advance(30 * time.Second)
	if got := r.ask(request(testSecret, "alice", r.code(k))).Code; got != radius.CodeAccessReject {
		t.Fatalf("good code on a locked device: %v, want Access-Reject", got)
	}
	if got := r.metric(`totpserver_radius_requests_total{client="vpn",result="locked"}`); got != 1 {
		t.Errorf("locked = %v, want 1", got)
	}
	if got := r.metric(`totpserver_lockouts_total`); got != 1 {
		t.Errorf("lockouts = %v, want 1", got)
	}
}

func TestEndUserAddress(t *testing.T) {
	for _, tc := range []struct {
		name    string
		trust   bool
		framed  net.IP
		station string
		want    string
	}{
		{"untrusted", false, net.IPv4(192, 0, 2, 7), "198.51.100.9", "127.0.0.1"},
		{"framed IP", true, net.IPv4(192, 0, 2, 7), "198.51.100.9", "192.0.2.7"},
		{"calling station", true, nil, "198.51.100.9", "198.51.100.9"},
		{"MAC address", true, nil, "00-11-22-33-44-55", "127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, func(c *rad.Config) { c.Clients[0].TrustStationID = tc.trust })
			k := r.user("alice", "")
			p := request(testSecret, "alice", r.code(k))
			if tc.framed != nil {
				rfc2865.FramedIPAddress_Set(p, tc.framed)
			}
			rfc2865.CallingStationID_SetString(p, tc.station)
			if got := r.ask(p).Code; got != radius.CodeAccessAccept {
				t.Fatalf("%v, want Access-Accept", got)
			}
			if !r.auditHas("radius.accept", "radius:vpn", "user:alice", tc.want) {
				t.Errorf("no radius.accept audit row with address %s", tc.want)
			}
		})
	}
}

func TestProxyStateEchoed(t *testing.T) {
	r := newRig(t, nil)
	k := r.user("alice", "")
	p := request(testSecret, "alice", r.code(k))
	p.Add(rfc2865.ProxyState_Type, radius.Attribute("hop-1"))
	p.Add(rfc2865.ProxyState_Type, radius.Attribute("hop-2"))
	rep := r.ask(p)
	var got [][]byte
	for _, a := range rep.Attributes {
		if a.Type == rfc2865.ProxyState_Type {
			got = append(got, a.Attribute)
		}
	}
	if len(got) != 2 || !bytes.Equal(got[0], []byte("hop-1")) || !bytes.Equal(got[1], []byte("hop-2")) {
		t.Errorf("Proxy-State in reply = %q, want hop-1, hop-2", got)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	r := newRig(t, nil)
	good := rad.Client{Prefix: netip.MustParsePrefix("10.0.0.0/8"), Secret: []byte("x"), Mode: rad.ModeCode}
	with := func(f func(*rad.Client)) []rad.Client { c := good; f(&c); return []rad.Client{c} }
	for _, tc := range []struct {
		name    string
		clients []rad.Client
		want    string
	}{
		{"no clients", nil, "no clients"},
		{"no cidr", with(func(c *rad.Client) { c.Prefix = netip.Prefix{} }), "no cidr"},
		{"no secret", with(func(c *rad.Client) { c.Secret = nil }), "empty secret"},
		{"bad mode", with(func(c *rad.Client) { c.Mode = "otp" }), `mode "otp"`},
		{"same name", append(with(func(c *rad.Client) {}), good), "used twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := rad.New(rad.Config{Core: r.core, Clients: tc.clients})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New = %v, want an error with %q", err, tc.want)
			}
		})
	}
}

func TestReadSecret(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "vpn.secret"), []byte("  hush \n"), 0o600)
	os.WriteFile(filepath.Join(dir, "empty"), []byte("\n"), 0o600)
	if got, err := rad.ReadSecret(filepath.Join(dir, "vpn.secret"), ""); err != nil || string(got) != "hush" {
		t.Errorf("ReadSecret(file) = %q, %v, want hush", got, err)
	}
	t.Setenv("CREDENTIALS_DIRECTORY", dir)
	if got, err := rad.ReadSecret("", "vpn.secret"); err != nil || string(got) != "hush" {
		t.Errorf("ReadSecret(credential) = %q, %v, want hush", got, err)
	}
	if _, err := rad.ReadSecret(filepath.Join(dir, "empty"), ""); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("ReadSecret(empty file) = %v, want an error naming it empty", err)
	}
	t.Setenv("CREDENTIALS_DIRECTORY", "")
	if _, err := rad.ReadSecret("", "vpn.secret"); err == nil || !strings.Contains(err.Error(), "CREDENTIALS_DIRECTORY") {
		t.Errorf("ReadSecret(credential without systemd) = %v", err)
	}
}

func TestServeStopsWithContext(t *testing.T) {
	r := newRig(t, nil)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.rad.Serve(ctx, pc) }()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve = %v, want nil after the context ends", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after the context ended")
	}
}
