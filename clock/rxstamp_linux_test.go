package clock

import (
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// waitQueued waits until a datagram sits in c's receive queue. On a
// loaded machine the kernel may deliver even a loopback datagram later,
// from its softirq thread; the receive timestamp is taken then.
func waitQueued(t *testing.T, c *net.UDPConn) {
	t.Helper()
	raw, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		var n int
		var ierr error
		if err := raw.Control(func(fd uintptr) { n, ierr = unix.IoctlGetInt(int(fd), unix.SIOCINQ) }); err != nil || ierr != nil {
			t.Fatalf("SIOCINQ: %v %v", err, ierr)
		}
		if n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the datagram never reached the socket")
		}
		time.Sleep(time.Millisecond)
	}
}
