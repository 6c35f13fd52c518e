// Package nts is Network Time Security for NTPv4 (RFC 8915): the key
// exchange (NTS-KE) over TLS 1.3, the NTS extension fields that protect an
// NTP query and its reply with AEAD_AES_SIV_CMAC_256, and a client that
// keeps the cookies of one server and replenishes them.
//
// A Query has the shape of beevik/ntp's Extension: ProcessQuery adds the
// unique identifier, a cookie, cookie placeholders and the authenticator to
// a request; ProcessResponse refuses a reply that is not authenticated by
// the server's key, or answers another request, and keeps the new cookies
// it carries. The clock's sampling is unchanged; only these fields are
// added.
//
// The package also holds the server side (Server), used by the simulated
// NTP servers and by tests.
package nts

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
)

// ALPN is the TLS application protocol of NTS-KE (RFC 8915 §4).
const ALPN = "ntske/1"

// DefaultKEPort is the TCP port of NTS-KE.
const DefaultKEPort = 4460

// AEADSIVCMAC256 is the IANA number of AEAD_AES_SIV_CMAC_256, the only
// algorithm this package speaks.
const AEADSIVCMAC256 = 15

// protoNTPv4 is NTPv4's NTS next protocol identifier.
const protoNTPv4 = 0

// exporterLabel is the TLS exporter label of RFC 8915 §5.1.
const exporterLabel = "EXPORTER-network-time-security"

// KE record types (RFC 8915 §4.1).
const (
	recEnd        = 0
	recNextProto  = 1
	recError      = 2
	recWarning    = 3
	recAEAD       = 4
	recCookie     = 5
	recServer     = 6
	recPort       = 7
	criticalBit   = 0x8000
	maxKEResponse = 64 << 10 // a reply this long is not a key exchange
	maxCookies    = 8
	maxCookieLen  = 1024
)

// keys derives the client-to-server and server-to-client keys from the
// TLS session (RFC 8915 §5.1): the exporter's context is the next protocol
// (NTPv4), the AEAD algorithm and 0 or 1 for the direction.
func keys(cs *tls.ConnectionState) (c2s, s2c []byte, err error) {
	ctx := []byte{0, protoNTPv4, 0, AEADSIVCMAC256, 0}
	if c2s, err = cs.ExportKeyingMaterial(exporterLabel, ctx, 32); err != nil {
		return nil, nil, err
	}
	ctx[4] = 1
	if s2c, err = cs.ExportKeyingMaterial(exporterLabel, ctx, 32); err != nil {
		return nil, nil, err
	}
	return c2s, s2c, nil
}

// appendRecord appends one KE record.
func appendRecord(b []byte, typ uint16, body []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, typ)
	b = binary.BigEndian.AppendUint16(b, uint16(len(body)))
	return append(b, body...)
}

// u16s encodes a list of 16-bit numbers.
func u16s(v ...uint16) []byte {
	var b []byte
	for _, x := range v {
		b = binary.BigEndian.AppendUint16(b, x)
	}
	return b
}

// Session is what a key exchange yields: the two keys, the cookies and
// where to send NTP.
type Session struct {
	C2S, S2C []byte
	Cookies  [][]byte
	// NTPServer and NTPPort are where NTP queries go: the server and port
	// records of the reply, or the KE host and 123.
	NTPServer string
	NTPPort   int
}

// NTPAddress is the session's NTP server as host:port.
func (s *Session) NTPAddress() string {
	return net.JoinHostPort(s.NTPServer, strconv.Itoa(s.NTPPort))
}

// KEError is a key exchange that failed: the TLS connection or handshake,
// or a reply that does not give what NTS needs.
type KEError struct{ Reason string }

func (e *KEError) Error() string { return "NTS key exchange: " + e.Reason }

func keErr(format string, a ...any) error { return &KEError{Reason: fmt.Sprintf(format, a...)} }

// Exchange runs NTS-KE with the server at host:port over conn dialed by
// dial, verifying its certificate against tlsConf (RootCAs, Time) for the
// name host.
func Exchange(ctx context.Context, dial func(ctx context.Context, network, addr string) (net.Conn, error), host string, port int, tlsConf *tls.Config) (*Session, error) {
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	raw, err := dial(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return nil, keErr("%v", err)
	}
	defer raw.Close()
	if dl, ok := ctx.Deadline(); ok {
		raw.SetDeadline(dl)
	}
	conf := tlsConf.Clone()
	if conf == nil {
		conf = &tls.Config{}
	}
	conf.MinVersion = tls.VersionTLS13
	conf.NextProtos = []string{ALPN}
	if conf.ServerName == "" {
		conf.ServerName = host
	}
	c := tls.Client(raw, conf)
	if err := c.HandshakeContext(ctx); err != nil {
		return nil, keErr("TLS: %v", err)
	}
	cs := c.ConnectionState()
	if cs.NegotiatedProtocol != ALPN {
		return nil, keErr("server did not agree to ALPN %s", ALPN)
	}
	var req []byte
	req = appendRecord(req, criticalBit|recNextProto, u16s(protoNTPv4))
	req = appendRecord(req, recAEAD, u16s(AEADSIVCMAC256))
	req = appendRecord(req, criticalBit|recEnd, nil)
	if _, err := c.Write(req); err != nil {
		return nil, keErr("sending request: %v", err)
	}
	s, err := readKEReply(bufio.NewReader(io.LimitReader(c, maxKEResponse)), host)
	if err != nil {
		return nil, err
	}
	if s.C2S, s.S2C, err = keys(&cs); err != nil {
		return nil, keErr("exporting keys: %v", err)
	}
	return s, nil
}

// readKEReply reads the server's records up to End of Message.
func readKEReply(r io.Reader, host string) (*Session, error) {
	s := &Session{NTPServer: host, NTPPort: 123}
	var proto, aead bool
	var hdr [4]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return nil, keErr("reply ends before End of Message: %v", err)
		}
		typ := binary.BigEndian.Uint16(hdr[:]) &^ criticalBit
		critical := binary.BigEndian.Uint16(hdr[:])&criticalBit != 0
		body := make([]byte, binary.BigEndian.Uint16(hdr[2:]))
		if _, err := io.ReadFull(r, body); err != nil {
			return nil, keErr("reply ends inside a record: %v", err)
		}
		switch typ {
		case recEnd:
			switch {
			case !proto:
				return nil, keErr("reply names no next protocol NTPv4")
			case !aead:
				return nil, keErr("reply names no AEAD algorithm")
			case len(s.Cookies) == 0:
				return nil, keErr("reply carries no cookies")
			}
			return s, nil
		case recNextProto:
			if len(body) != 2 || binary.BigEndian.Uint16(body) != protoNTPv4 {
				return nil, keErr("server offers next protocol %x, not NTPv4", body)
			}
			proto = true
		case recError:
			code := -1
			if len(body) == 2 {
				code = int(binary.BigEndian.Uint16(body))
			}
			return nil, keErr("server sent error %d", code)
		case recWarning:
			// Warnings are advisory; an unknown one is ignored.
		case recAEAD:
			if len(body) != 2 || binary.BigEndian.Uint16(body) != AEADSIVCMAC256 {
				return nil, keErr("server chose AEAD algorithm %x, want %d (AEAD_AES_SIV_CMAC_256)", body, AEADSIVCMAC256)
			}
			aead = true
		case recCookie:
			if len(body) == 0 || len(body) > maxCookieLen {
				return nil, keErr("cookie of %d bytes", len(body))
			}
			if len(s.Cookies) < maxCookies {
				s.Cookies = append(s.Cookies, body)
			}
		case recServer:
			name := string(body)
			if name == "" || len(name) > 255 || slices.ContainsFunc(body, func(b byte) bool { return b <= ' ' || b > '~' }) {
				return nil, keErr("malformed NTP server record %q", body)
			}
			s.NTPServer = name
		case recPort:
			if len(body) != 2 || binary.BigEndian.Uint16(body) == 0 {
				return nil, keErr("malformed NTP port record %x", body)
			}
			s.NTPPort = int(binary.BigEndian.Uint16(body))
		default:
			if critical {
				return nil, keErr("unknown critical record type %d", typ)
			}
		}
	}
}
