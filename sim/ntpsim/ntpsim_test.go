package ntpsim

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/beevik/ntp"
)

var start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func query(n *Network, addr string, clockErr time.Duration) (*ntp.Response, error) {
	return ntp.QueryWithOptions(addr, ntp.QueryOptions{
		Dialer:        n.Dial,
		GetSystemTime: func() time.Time { return n.Now().Add(clockErr) },
	})
}

func TestSimulatedServer(t *testing.T) {
	tests := []struct {
		name       string
		srv        Server
		wantOffset time.Duration
		tol        time.Duration
	}{
		{"truthful", Server{BaseDelay: time.Millisecond}, 0, time.Microsecond},
		{"falseticker", Server{BaseDelay: time.Millisecond, Error: time.Hour}, time.Hour, time.Microsecond},
		// 4 ms more on the way out reads as 2 ms ahead.
		{"asymmetric", Server{BaseDelay: time.Millisecond, Asymmetry: 4 * time.Millisecond}, 2 * time.Millisecond, 10 * time.Microsecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := NewNetwork(start, 1)
			tt.srv.Address = "s:123"
			n.Add(tt.srv)
			// The client's clock is 5 s behind; the offset says so.
			r, err := query(n, "s", -5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if d := r.ClockOffset - 5*time.Second - tt.wantOffset; d.Abs() > tt.tol {
				t.Errorf("offset %v, want %v", r.ClockOffset, 5*time.Second+tt.wantOffset)
			}
			if n.Elapsed() < 2*tt.srv.BaseDelay {
				t.Errorf("virtual time advanced %v, want at least the round trip", n.Elapsed())
			}
		})
	}
}

func TestLossAndOutage(t *testing.T) {
	n := NewNetwork(start, 1)
	n.Add(Server{Address: "lossy:123", Loss: 1})
	n.Add(Server{Address: "out:123", Outages: []Window{{0, time.Hour}}})
	for _, a := range []string{"lossy", "out"} {
		_, err := query(n, a, 0)
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("%s: error %v, want a timeout", a, err)
		}
	}
	if _, err := query(n, "nowhere", 0); err == nil {
		t.Error("unknown server: no error")
	}
}

func TestKiss(t *testing.T) {
	n := NewNetwork(start, 1)
	n.Add(Server{Address: "deny:123", Kiss: "DENY"})
	n.Add(Server{Address: "rate:123", Kiss: "RATE", KissInterval: time.Minute})
	r, err := query(n, "deny", 0)
	if err != nil || !r.IsKissOfDeath() || r.KissCode != "DENY" {
		t.Errorf("deny: %v %+v", err, r)
	}
	var kissed int
	for range 6 {
		r, err := query(n, "rate", 0)
		if err != nil {
			t.Fatal(err)
		}
		if r.IsKissOfDeath() {
			kissed++
		}
	}
	if kissed != 2 {
		t.Errorf("6 quick queries to a 4-query bucket: %d kisses, want 2", kissed)
	}
}

func TestUDPServer(t *testing.T) {
	s, err := ListenUDP("127.0.0.1:0", 3*time.Second)
	if err != nil {
		t.Skipf("no UDP on 127.0.0.1: %v", err)
	}
	defer s.Close()
	r, err := ntp.QueryWithOptions(s.Addr(), ntp.QueryOptions{Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if d := r.ClockOffset - 3*time.Second; d.Abs() > 20*time.Millisecond {
		t.Errorf("offset %v, want about 3s", r.ClockOffset)
	}
	s.SetKiss("RSTR")
	r, err = ntp.QueryWithOptions(s.Addr(), ntp.QueryOptions{Timeout: 2 * time.Second})
	if err != nil || !r.IsKissOfDeath() || r.KissCode != "RSTR" {
		t.Errorf("after SetKiss: %v %+v", err, r)
	}
}

// TestPathSpreadAndSpikes queries a path of 3 ms ± 1 ms each way with 10%
// of packets delayed by an exponential spike of mean 15 ms: the round
// trips stay within 4–8 ms except for the spikes, about one query in five
// meets a spike on one of its two ways, and the offset errors stay within
// half the round trip.
func TestPathSpreadAndSpikes(t *testing.T) {
	n := NewNetwork(start, 7)
	n.Add(Server{Address: "j:123", BaseDelay: 3 * time.Millisecond, Spread: time.Millisecond,
		SpikeRate: 0.1, SpikeMean: 15 * time.Millisecond})
	const queries = 4000
	var spiked, under4 int
	for range queries {
		r, err := query(n, "j", 0)
		if err != nil {
			t.Fatal(err)
		}
		if r.RTT < 4*time.Millisecond {
			under4++
		}
		if r.RTT > 8*time.Millisecond+10*time.Microsecond {
			spiked++
		}
		if r.ClockOffset.Abs() > r.RTT/2 {
			t.Fatalf("offset %v beyond half the round trip %v", r.ClockOffset, r.RTT)
		}
	}
	if under4 != 0 {
		t.Errorf("%d round trips under 4 ms, want none", under4)
	}
	// P(a spike on either way) = 1 - 0.9² = 19%; a spike short enough to
	// hide in the spread is rare.
	if f := float64(spiked) / queries; f < 0.14 || f > 0.22 {
		t.Errorf("%.1f%% of round trips over 8 ms, want about 18%%", 100*f)
	}
}
