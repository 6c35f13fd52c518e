package ntpsim_test

import (
	"context"
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"github.com/totpbox/totpbox/clock"
	"github.com/totpbox/totpbox/sim/ntpsim"
)

// ntsServer starts a simulated NTS server with a certificate for
// 127.0.0.1 from a CA made for the test, and returns it with the CA.
func ntsServer(t *testing.T) (*ntpsim.UDPServer, *x509.CertPool) {
	t.Helper()
	ca, err := ntpsim.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ntpsim.ListenNTS("127.0.0.1:0", 0, cert)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv, ca.Pool()
}

// engine is the clock polling servers round by round over loopback, the
// host's clock its oscillator.
func engine(t *testing.T, servers []string, roots *x509.CertPool) *clock.Engine {
	t.Helper()
	cfg := clock.Config{Servers: servers}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	tb := clock.NewTimebase()
	return clock.NewEngine(cfg, clock.EngineConfig{
		Timebase: tb,
		Epoch:    time.Now().Add(-tb.Local()),
		Sleep:    func(context.Context, time.Duration) error { return nil },
		Timeout:  time.Second,
		NTS:      clock.NTSEnv{Roots: roots},
	})
}

// TestClockSyncsOverNTS: our clock syncs with the simulated server over
// NTS: SYNCED, authenticated, its cookies replenished, the NTP port taken
// from the key exchange's port record, and the reading within its bound.
func TestClockSyncsOverNTS(t *testing.T) {
	srv, roots := ntsServer(t)
	e := engine(t, []string{srv.NTSServer()}, roots)
	var rd clock.Reading
	for range 20 {
		e.Round(context.Background())
		if rd = e.Reading(); rd.State == clock.Synced {
			break
		}
	}
	st := e.Status().Servers[0]
	if rd.State != clock.Synced || !rd.Authenticated {
		t.Fatalf("reading %+v after 20 rounds over NTS, want SYNCED and authenticated; server %+v", rd, st)
	}
	if d := time.Since(rd.Time); d.Abs() > rd.Bound+5*time.Millisecond {
		t.Errorf("reading %v off the host's time, outside its bound %v", d, rd.Bound)
	}
	if !st.NTS || !st.Authenticated || st.AuthFailures != 0 || st.Failures != 0 || st.Cookies != 8 {
		t.Errorf("server %+v; want authenticated, no failures, the cookie jar full at 8", st)
	}
}

// TestClockRefusesTamperedNTSReply: replies changed after sealing (one
// bit of the transmit timestamp, or a +90 s shift) are refused and
// counted; the clock never synchronises on them.
func TestClockRefusesTamperedNTSReply(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tamper func([]byte)
	}{
		{"flipped bit", func(b []byte) { b[45] ^= 0x10 }},
		{"shifted 90 s", func(b []byte) {
			for _, off := range []int{32, 40} {
				b[off+3] += 90
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, roots := ntsServer(t)
			srv.SetTamper(tc.tamper)
			e := engine(t, []string{srv.NTSServer()}, roots)
			for range 10 {
				e.Round(context.Background())
			}
			rd, st := e.Reading(), e.Status().Servers[0]
			if rd.State == clock.Synced || rd.Authenticated || st.Authenticated {
				t.Fatalf("reading %+v, server %+v from tampered replies; want no sync", rd, st)
			}
			if st.AuthFailures == 0 {
				t.Errorf("server %+v: tampered replies not counted as failed authentication", st)
			}
		})
	}
}

// TestNTSServerAnswersPlainNTP: the NTS server still answers plain NTP,
// as chrony does, and such replies are not authenticated.
func TestNTSServerAnswersPlainNTP(t *testing.T) {
	srv, _ := ntsServer(t)
	no := false
	cfg := clock.Config{Servers: []string{srv.Addr()}, RequireAuthenticated: &no}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	tb := clock.NewTimebase()
	e := clock.NewEngine(cfg, clock.EngineConfig{
		Timebase: tb, Epoch: time.Now().Add(-tb.Local()),
		Sleep: func(context.Context, time.Duration) error { return nil }, Timeout: time.Second,
	})
	for range 20 {
		if e.Round(context.Background()); e.Reading().State == clock.Synced {
			break
		}
	}
	if rd := e.Reading(); rd.State != clock.Synced || rd.Authenticated {
		t.Errorf("reading %+v over plain NTP, want SYNCED and not authenticated", rd)
	}
}

// TestNTSKEWrongCA: a client that does not trust the server's CA refuses
// the key exchange and takes no sample.
func TestNTSKEWrongCA(t *testing.T) {
	srv, _ := ntsServer(t)
	other, err := ntpsim.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	e := engine(t, []string{srv.NTSServer()}, other.Pool())
	e.Round(context.Background())
	st := e.Status().Servers[0]
	if st.KEFailures != 1 || st.Authenticated || e.Reading().State == clock.Synced {
		t.Errorf("server %+v; want the key exchange refused (unknown authority)", st)
	}
}

// TestNetworkDialKE: the simulated network's NTS-KE is reached by the
// host of a server's NTP address, and fails like the network would for an
// unknown host, a server in an outage, or NTS not enabled.
func TestNetworkDialKE(t *testing.T) {
	ca, err := ntpsim.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue("ntp1.lan", "ntp2.lan")
	if err != nil {
		t.Fatal(err)
	}
	plain := ntpsim.NewNetwork(time.Now(), 1)
	plain.Add(ntpsim.Server{Address: "ntp1.lan:123"})
	n := ntpsim.NewNetwork(time.Now(), 1)
	n.Add(ntpsim.Server{Address: "ntp1.lan:123"})
	n.Add(ntpsim.Server{Address: "ntp2.lan:123", Outages: []ntpsim.Window{{From: 0, To: time.Hour}}})
	if err := n.EnableNTS(cert); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		net  *ntpsim.Network
		addr string
		want string // "" for a connection
	}{
		{"server", n, "ntp1.lan:4460", ""},
		{"unknown host", n, "ntp9.lan:4460", "no such host"},
		{"outage", n, "ntp2.lan:4460", "server down"},
		{"NTS not enabled", plain, "ntp1.lan:4460", "NTS not enabled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tc.net.DialKE(context.Background(), "tcp", tc.addr)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				c.Close()
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("DialKE(%s) = %v, want an error saying %q", tc.addr, err, tc.want)
			}
		})
	}
}
