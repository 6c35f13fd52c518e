//go:build !linux

package localapi

import (
	"errors"
	"net"
	"runtime"
)

// peerUID cannot tell who listens on a socket outside Linux: the client
// then sends nothing.
func peerUID(net.Conn) (int, error) {
	return 0, errors.New("checking the daemon's user (SO_PEERCRED) is not supported on " + runtime.GOOS)
}
