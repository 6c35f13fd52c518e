//go:build linux

package clock

import (
	"cmp"
	"encoding/binary"
	"time"

	"golang.org/x/sys/unix"
)

// enableRxStamps asks the kernel to stamp each datagram the socket
// receives (SO_TIMESTAMPNS). Where it cannot, Read works as plain UDP.
func (c *stampedConn) enableRxStamps() {
	raw, err := c.UDPConn.SyscallConn()
	if err != nil {
		c.noStamps = err
		return
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1)
	}); err != nil || serr != nil {
		c.noStamps = cmp.Or(err, serr)
		return
	}
	c.oob = make([]byte, 128)
}

// Read reads one datagram and, when the kernel stamped it, records how
// long it waited between arriving and Read returning.
func (c *stampedConn) Read(b []byte) (int, error) {
	c.lag = 0
	if c.oob == nil {
		return c.UDPConn.Read(b)
	}
	n, oobn, _, _, err := c.ReadMsgUDP(b, c.oob)
	now := time.Now()
	if err != nil {
		return n, err
	}
	if at, ok := rxStamp(c.oob[:oobn]); ok {
		c.setLag(now.Sub(at))
	}
	return n, nil
}

// rxStamp finds the kernel's receive timestamp in a datagram's control
// messages.
func rxStamp(oob []byte) (time.Time, bool) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return time.Time{}, false
	}
	for _, m := range msgs {
		if m.Header.Level != unix.SOL_SOCKET || m.Header.Type != unix.SO_TIMESTAMPNS {
			continue
		}
		// A struct timespec: two longs, 32 or 64 bits each.
		switch d := m.Data; len(d) {
		case 8:
			return time.Unix(int64(int32(binary.NativeEndian.Uint32(d))), int64(int32(binary.NativeEndian.Uint32(d[4:])))), true
		case 16:
			return time.Unix(int64(binary.NativeEndian.Uint64(d)), int64(binary.NativeEndian.Uint64(d[8:]))), true
		}
	}
	return time.Time{}, false
}
