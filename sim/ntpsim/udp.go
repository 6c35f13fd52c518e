package ntpsim

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// UDPServer is a real NTP server on a UDP socket serving the host's clock
// plus an offset, stratum 1. It is for the daemon's tests and the
// simulator in real time.
type UDPServer struct {
	pc     net.PacketConn
	offset atomic.Int64
	kiss   atomic.Value // string
	wg     sync.WaitGroup
}

// ListenUDP starts a server on addr ("127.0.0.1:0" picks a port) whose
// time is the host's plus offset.
func ListenUDP(addr string, offset time.Duration) (*UDPServer, error) {
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return nil, err
	}
	s := &UDPServer{pc: pc}
	s.offset.Store(int64(offset))
	s.kiss.Store("")
	s.wg.Add(1)
	go s.serve()
	return s, nil
}

// Addr returns the "host:port" the server listens on.
func (s *UDPServer) Addr() string { return s.pc.LocalAddr().String() }

// SetOffset changes the server's offset from the host clock.
func (s *UDPServer) SetOffset(d time.Duration) { s.offset.Store(int64(d)) }

// SetKiss makes the server answer every query with a kiss-of-death code
// (e.g. "DENY"); "" serves time again.
func (s *UDPServer) SetKiss(code string) { s.kiss.Store(code) }

// Close stops the server and waits for it.
func (s *UDPServer) Close() error {
	err := s.pc.Close()
	s.wg.Wait()
	return err
}

func (s *UDPServer) serve() {
	defer s.wg.Done()
	buf := make([]byte, 1024)
	for {
		n, from, err := s.pc.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		off := time.Duration(s.offset.Load())
		recv := time.Now().Add(off)
		resp, err := reply(buf[:n], replyParams{
			stratum:        1,
			kiss:           s.kiss.Load().(string),
			rootDispersion: 10 * time.Microsecond,
			recv:           recv,
			xmit:           time.Now().Add(off),
		})
		if err != nil {
			continue
		}
		s.pc.WriteTo(resp, from)
	}
}
