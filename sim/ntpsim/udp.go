package ntpsim

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/totpbox/totpbox/clock/nts"
)

// UDPServer is a real NTP server on a UDP socket serving the host's clock
// plus an offset, stratum 1. It is for the daemon's tests and the
// simulator in real time.
type UDPServer struct {
	pc     net.PacketConn
	offset atomic.Int64
	kiss   atomic.Value // string
	wg     sync.WaitGroup

	nts    *nts.Server  // nil: plain NTP only
	ke     net.Listener // NTS-KE, with nts
	tamper atomic.Pointer[func([]byte)]
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

// ListenNTS starts a server like ListenUDP that also speaks NTS (RFC
// 8915): NTS-KE over TLS 1.3 on a TCP port of the same host, with cert,
// sending a port record that names the UDP port; NTS-protected queries get
// authenticated replies with new cookies, and plain queries plain replies.
func ListenNTS(addr string, offset time.Duration, cert tls.Certificate) (*UDPServer, error) {
	srv, err := nts.NewServer()
	if err != nil {
		return nil, err
	}
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return nil, err
	}
	host, _, _ := net.SplitHostPort(pc.LocalAddr().String())
	ke, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		pc.Close()
		return nil, fmt.Errorf("NTS-KE listener: %w", err)
	}
	srv.NTPPort = pc.LocalAddr().(*net.UDPAddr).Port
	s := &UDPServer{pc: pc, nts: srv, ke: ke}
	s.offset.Store(int64(offset))
	s.kiss.Store("")
	s.wg.Add(2)
	go s.serve()
	go func() {
		defer s.wg.Done()
		srv.ServeKE(ke, &tls.Config{Certificates: []tls.Certificate{cert}})
	}()
	return s, nil
}

// NTSServer returns the server as a clock.servers entry,
// "nts://host:keport", or "" for a plain NTP server.
func (s *UDPServer) NTSServer() string {
	if s.ke == nil {
		return ""
	}
	return "nts://" + s.ke.Addr().String()
}

// SetTamper makes the server pass each reply through f after sealing it,
// as an on-path attacker would change it; nil sends replies unchanged.
func (s *UDPServer) SetTamper(f func([]byte)) {
	if f == nil {
		s.tamper.Store(nil)
		return
	}
	s.tamper.Store(&f)
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
	if s.ke != nil {
		s.ke.Close()
	}
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
		plain := func(req []byte) ([]byte, error) {
			return reply(req, replyParams{
				stratum:        1,
				kiss:           s.kiss.Load().(string),
				rootDispersion: 10 * time.Microsecond,
				recv:           recv,
				xmit:           time.Now().Add(off),
			})
		}
		var resp []byte
		if s.nts != nil {
			resp, err = s.nts.Respond(buf[:n], plain)
			if errors.Is(err, nts.ErrNotNTS) {
				resp, err = plain(buf[:n])
			}
		} else {
			resp, err = plain(buf[:n])
		}
		if err != nil {
			continue
		}
		if f := s.tamper.Load(); f != nil {
			(*f)(resp)
		}
		s.pc.WriteTo(resp, from)
	}
}
