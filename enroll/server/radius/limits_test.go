package radius_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"

	rad "github.com/totpbox/totpbox/enroll/server/radius"
)

// askFrom is ask from source address src (a loopback address).
func (r *rig) askFrom(src string, p *radius.Packet) *radius.Packet {
	r.t.Helper()
	raw, err := rad.SignRequest(p)
	if err != nil {
		r.t.Fatal(err)
	}
	conn, err := net.DialUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(src+":0")), net.UDPAddrFromAddrPort(netip.MustParseAddrPort(r.addr)))
	if err != nil {
		r.t.Fatal(err)
	}
	defer conn.Close()
	rep := exchangeOn(r.t, conn, raw, string(p.Secret), 10*time.Second)
	if rep == nil {
		r.t.Fatal("no reply")
	}
	return rep
}

// twoNASes makes the rig's clients vpn-a (127.0.0.1) and vpn-b
// (127.0.0.2), both password+code.
func twoNASes(trust bool) func(*rad.Config) {
	return func(c *rad.Config) {
		c.Clients = []rad.Client{
			{Name: "vpn-a", Prefix: netip.MustParsePrefix("127.0.0.1/32"), Secret: []byte(testSecret), Mode: rad.ModePasswordCode, TrustStationID: trust},
			{Name: "vpn-b", Prefix: netip.MustParsePrefix("127.0.0.2/32"), Secret: []byte(testSecret), Mode: rad.ModePasswordCode, TrustStationID: trust},
		}
		c.PasswordPerUser = rad.Rate{PerSecond: 1.0 / 360, Burst: 5}
		c.PasswordPerIP = rad.Rate{PerSecond: 0.2, Burst: 10}
	}
}

// TestPasswordFailuresStayOnTheirNAS: ten wrong passwords for bob through
// one NAS refuse bob there, but not his right password through another.
func TestPasswordFailuresStayOnTheirNAS(t *testing.T) {
	r := newRig(t, twoNASes(false))
	k := r.user("bob", "correct horse 12")
	for i := range 10 {
		if got := r.askFrom("127.0.0.1", request(testSecret, "bob", fmt.Sprintf("guess %d", i))).Code; got != radius.CodeAccessReject {
			t.Fatalf("wrong password %d: %v, want Access-Reject", i, got)
		}
	}
	if got := r.askFrom("127.0.0.1", request(testSecret, "bob", "correct horse 12"+r.code(k))).Code; got != radius.CodeAccessReject {
		t.Errorf("bob through the NAS the guesses came through: %v, want Access-Reject (limited)", got)
	}
	if got := r.askFrom("127.0.0.2", request(testSecret, "bob", "correct horse 12"+r.code(k))).Code; got != radius.CodeAccessAccept {
		t.Errorf("bob's right password and code through another NAS: %v, want Access-Accept", got)
	}
}

// TestWrongNamesKeepTheNASsUsers: without trust_station_id every request
// through a NAS has its address; wrong passwords for many names through
// it must not lock out everyone behind it.
func TestWrongNamesKeepTheNASsUsers(t *testing.T) {
	r := newRig(t, twoNASes(false))
	k := r.user("alice", "correct horse 12")
	for i := range 30 {
		r.askFrom("127.0.0.1", request(testSecret, fmt.Sprintf("user%d", i), "guess"))
	}
	if got := r.askFrom("127.0.0.1", request(testSecret, "alice", "correct horse 12"+r.code(k))).Code; got != radius.CodeAccessAccept {
		t.Errorf("alice behind the NAS after 30 wrong passwords for other names: %v, want Access-Accept", got)
	}
}

// TestStationLimitWithTrust: with trust_station_id the end user's address
// is limited on its own.
func TestStationLimitWithTrust(t *testing.T) {
	r := newRig(t, twoNASes(true))
	k := r.user("alice", "correct horse 12")
	from := func(user, pw, station string) radius.Code {
		p := request(testSecret, user, pw)
		rfc2865.CallingStationID_SetString(p, station)
		return r.askFrom("127.0.0.1", p).Code
	}
	for i := range 10 {
		from(fmt.Sprintf("user%d", i), "guess", "198.51.100.9")
	}
	if got := from("alice", "correct horse 12"+r.code(k), "198.51.100.9"); got != radius.CodeAccessReject {
		t.Errorf("from a station past its limit: %v, want Access-Reject", got)
	}
	if got := from("alice", "correct horse 12"+r.code(k), "198.51.100.10"); got != radius.CodeAccessAccept {
		t.Errorf("alice from another station: %v, want Access-Accept", got)
	}
}

// TestRejectsAggregate: a flood of rejects writes one audit row per
// client, address, user and reason a minute, with a count.
func TestRejectsAggregate(t *testing.T) {
	r := newRig(t, twoNASes(false))
	r.user("alice", "correct horse 12")
	for i := range 40 {
		r.askFrom("127.0.0.1", request(testSecret, "alice", fmt.Sprintf("guess %d", i)))
	}
	r.clock.Advance(time.Minute)
	r.rad.Sweep(context.Background())
	evs, err := r.st.AuditEvents(context.Background(), 1000, 0)
	if err != nil {
		t.Fatal(err)
	}
	rows, counted := 0, 0
	for _, e := range evs {
		if e.Action != "radius.reject" {
			continue
		}
		rows++
		n := 1
		if i := strings.Index(e.Detail, "("); i >= 0 {
			fmt.Sscanf(e.Detail[i:], "(%d rejects", &n)
		}
		counted += n
		if e.Actor != "radius:vpn-a" || e.Target != "user:alice" || e.IP != "127.0.0.1" {
			t.Errorf("radius.reject row %+v, want actor radius:vpn-a, user:alice, 127.0.0.1", e)
		}
	}
	if rows > 2 || counted != 40 {
		t.Errorf("%d radius.reject rows counting %d rejects, want at most 2 (wrong password, rate limited) counting 40", rows, counted)
	}
}

// TestPasswordLimitStatePruned: password attempts for 75 000 usernames
// leave no limit state once their window has passed and the janitor has
// run.
func TestPasswordLimitStatePruned(t *testing.T) {
	r := newRig(t, twoNASes(true))
	now := r.clock.Now()
	for i := range 75000 {
		r.rad.AllowPassword(i%2, fmt.Sprintf("user%d", i), fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255), now)
	}
	if n := r.rad.PasswordLimitKeys(); n < 75000 {
		t.Fatalf("%d keys held after 75 000 usernames, want them all within the window", n)
	}
	r.clock.Advance(time.Duration(5*360) * time.Second) // the user budget's refill
	r.rad.Sweep(context.Background())
	if n := r.rad.PasswordLimitKeys(); n != 0 {
		t.Errorf("%d keys held after the window, want none", n)
	}
}
