package clock

import (
	"errors"
	"net"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/beevik/ntp"
)

// TestStampedConnMeasuresWait: a reply that sat in the socket while the
// reader was busy is stamped when it arrived, not when it was read.
func TestStampedConnMeasuresWait(t *testing.T) {
	srv, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c, err := dialStamped("", srv.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if runtime.GOOS == "linux" && errors.Is(c.noStamps, syscall.ENOPROTOOPT) {
		// Every Linux kernel since 2.6.22 has the option; qemu-user does
		// not pass it on.
		t.Skipf("setsockopt SO_TIMESTAMPNS: %v (an emulator?)", c.noStamps)
	}
	if runtime.GOOS == "linux" && c.oob == nil {
		t.Fatalf("no kernel receive timestamps on Linux: %v", c.noStamps)
	}
	const wait = 30 * time.Millisecond
	if _, err := srv.WriteTo([]byte("reply"), c.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	waitQueued(t, c.UDPConn)
	time.Sleep(wait) // the reader is busy elsewhere
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	if err != nil || string(buf[:n]) != "reply" {
		t.Fatalf("Read = %q, %v", buf[:n], err)
	}
	if runtime.GOOS != "linux" {
		if c.lag != 0 {
			t.Fatalf("lag %v without kernel timestamps", c.lag)
		}
		return
	}
	if c.lag < wait || c.lag >= maxRxLag {
		t.Fatalf("lag %v, want at least the %v the reply waited", c.lag, wait)
	}
}

func TestSetLag(t *testing.T) {
	for _, tc := range []struct {
		in, want time.Duration
	}{
		{120 * time.Microsecond, 120 * time.Microsecond},
		{0, 0},
		{-time.Millisecond, 0}, // the host clock stepped back in between
		{2 * time.Second, 0},   // or forward
		{999 * time.Millisecond, 999 * time.Millisecond},
	} {
		c := &stampedConn{}
		c.setLag(tc.in)
		if c.lag != tc.want {
			t.Errorf("setLag(%v): lag %v, want %v", tc.in, c.lag, tc.want)
		}
	}
}

// TestStampedRecv: the server's clock 5 ms ahead, 2 ms each way, 1 ms in
// the server; the reply waited 3 ms in the socket. Read's time gives an
// offset of 3.5 ms over a 7 ms round trip; the kernel's stamp gives the
// truth.
func TestStampedRecv(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	ms := func(n float64) time.Time { return t0.Add(time.Duration(n * float64(time.Millisecond))) }
	r := &ntp.Response{Timestamps: ntp.ProtocolTimestamps{
		ClientXmit: ms(0), ServerRecv: ms(7), ServerXmit: ms(8), ClientRecv: ms(8),
	}}
	stampedRecv(r, 3*time.Millisecond)
	if r.ClockOffset != 5*time.Millisecond || r.RTT != 4*time.Millisecond || !r.Timestamps.ClientRecv.Equal(ms(5)) {
		t.Fatalf("offset %v, round trip %v, received %v; want 5ms, 4ms, +5ms", r.ClockOffset, r.RTT, r.Timestamps.ClientRecv.Sub(t0))
	}
}
