package nts

import (
	"bufio"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/totpbox/totpbox/clock/nts/siv"
)

// Server is the server side of NTS: it answers key exchanges over TLS and
// protects the replies to NTS queries. Its cookies hold the session's two
// keys sealed with a key of its own (AEAD_AES_SIV_CMAC_256), so it keeps no
// state per client. It serves the simulated NTP servers and tests.
type Server struct {
	key *siv.SIV
	// NTPServer and NTPPort, when set, are sent in the key exchange's
	// server and port records; otherwise the client uses the KE host and
	// port 123.
	NTPServer string
	NTPPort   int

	wg sync.WaitGroup
}

// NewServer returns a server with a fresh random cookie key.
func NewServer() (*Server, error) {
	k := make([]byte, siv.KeySize)
	rand.Read(k)
	a, err := siv.New(k)
	if err != nil {
		return nil, err
	}
	return &Server{key: a}, nil
}

// serverCookieNonce is the nonce length of the server's cookies.
const serverCookieNonce = 16

// keTimeout bounds one key exchange on the server side.
const keTimeout = 10 * time.Second

// maxKERequest bounds what a client may send before End of Message.
const maxKERequest = 4 << 10

// cookie seals the two keys into a new cookie: nonce, then the keys
// encrypted under the server key with the nonce as associated data.
func (s *Server) cookie(c2s, s2c []byte) []byte {
	nonce := make([]byte, serverCookieNonce)
	rand.Read(nonce)
	return s.key.Seal(nonce, append(slices.Clone(c2s), s2c...), nonce)
}

// openCookie returns the keys a cookie holds, or false if the server did
// not make it.
func (s *Server) openCookie(c []byte) (c2s, s2c []byte, ok bool) {
	if len(c) != serverCookieNonce+siv.TagSize+2*siv.KeySize {
		return nil, nil, false
	}
	keys, err := s.key.Open(nil, c[serverCookieNonce:], c[:serverCookieNonce])
	if err != nil {
		return nil, nil, false
	}
	return keys[:siv.KeySize], keys[siv.KeySize:], true
}

// ServeKE answers key exchanges on l with the certificates of conf until
// l is closed; it sets TLS 1.3 and ALPN ntske/1. It returns once l fails
// and every exchange under way has ended.
func (s *Server) ServeKE(l net.Listener, conf *tls.Config) error {
	conf = keConfig(conf)
	defer s.wg.Wait()
	for {
		c, err := l.Accept()
		if err != nil {
			return err
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.handleKE(tls.Server(c, conf))
		}()
	}
}

// ServeKEConn runs one key exchange on c, an accepted connection (a pipe
// in a simulation), with the certificates of conf, and closes c.
func (s *Server) ServeKEConn(c net.Conn, conf *tls.Config) {
	s.handleKE(tls.Server(c, keConfig(conf)))
}

// keConfig is conf with what NTS-KE requires: TLS 1.3 and ALPN ntske/1.
func keConfig(conf *tls.Config) *tls.Config {
	conf = conf.Clone()
	conf.MinVersion = tls.VersionTLS13
	conf.NextProtos = []string{ALPN}
	return conf
}

// handleKE runs one key exchange: it reads the client's records, and
// answers NTPv4 with AEAD_AES_SIV_CMAC_256 and eight cookies, or an error
// record (bad request) when the client offers neither.
func (s *Server) handleKE(c *tls.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(keTimeout))
	if err := c.Handshake(); err != nil {
		return
	}
	cs := c.ConnectionState()
	if cs.NegotiatedProtocol != ALPN {
		return
	}
	proto, aead, err := readKERequest(bufio.NewReader(io.LimitReader(c, maxKERequest)))
	if err != nil {
		return
	}
	var out []byte
	if !proto || !aead {
		out = appendRecord(out, criticalBit|recError, u16s(1)) // bad request
		out = appendRecord(out, criticalBit|recEnd, nil)
		c.Write(out)
		return
	}
	c2s, s2c, err := keys(&cs)
	if err != nil {
		return
	}
	out = appendRecord(out, criticalBit|recNextProto, u16s(protoNTPv4))
	out = appendRecord(out, recAEAD, u16s(AEADSIVCMAC256))
	if s.NTPServer != "" {
		out = appendRecord(out, recServer, []byte(s.NTPServer))
	}
	if s.NTPPort != 0 {
		out = appendRecord(out, recPort, u16s(uint16(s.NTPPort)))
	}
	for range maxCookies {
		out = appendRecord(out, recCookie, s.cookie(c2s, s2c))
	}
	out = appendRecord(out, criticalBit|recEnd, nil)
	c.Write(out)
}

// readKERequest reads a client's records up to End of Message and says
// whether it offered NTPv4 and AEAD_AES_SIV_CMAC_256.
func readKERequest(r io.Reader) (proto, aead bool, err error) {
	var hdr [4]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return false, false, err
		}
		typ := binary.BigEndian.Uint16(hdr[:]) &^ criticalBit
		body := make([]byte, binary.BigEndian.Uint16(hdr[2:]))
		if _, err := io.ReadFull(r, body); err != nil {
			return false, false, err
		}
		switch typ {
		case recEnd:
			return proto, aead, nil
		case recNextProto:
			proto = proto || has16(body, protoNTPv4)
		case recAEAD:
			aead = aead || has16(body, AEADSIVCMAC256)
		}
	}
}

// has16 reports whether the list of 16-bit numbers in b holds v.
func has16(b []byte, v uint16) bool {
	for i := 0; i+1 < len(b); i += 2 {
		if binary.BigEndian.Uint16(b[i:]) == v {
			return true
		}
	}
	return false
}

// ErrNotNTS is a request without NTS extension fields: plain NTP, for the
// caller to answer as such or refuse.
var ErrNotNTS = errors.New("NTS: request carries no NTS fields")

// maxPlaceholders bounds the cookies one reply gives back, so a request
// cannot make the server send much more than it received.
const maxPlaceholders = maxCookies - 1

// Respond answers an NTS request req. header builds the plain NTP reply
// (48 bytes) to req's header. A request whose authenticator verifies gets
// that reply with the unique identifier echoed and, sealed with the
// session's server-to-client key, one new cookie and one more per
// placeholder as long as a cookie. A cookie the server cannot open gets an NTS-NAK (kiss code
// NTSN) echoing the identifier. A request without NTS fields gives
// ErrNotNTS; a forged or malformed one an AuthError, and must not be
// answered.
func (s *Server) Respond(req []byte, header func(req []byte) ([]byte, error)) ([]byte, error) {
	if len(req) < ntpHeader {
		return nil, &AuthError{Reason: "request shorter than an NTP header"}
	}
	if len(req) == ntpHeader {
		return nil, ErrNotNTS
	}
	efs, err := parseEFs(req, ntpHeader)
	if err != nil {
		return nil, &AuthError{Reason: err.Error()}
	}
	var uid, cookie []byte
	placeholders, auth := 0, -1
	for i, f := range efs {
		switch f.typ {
		case efUniqueID:
			if uid == nil {
				uid = f.body
			}
		case efCookie:
			if cookie == nil {
				cookie = f.body
			}
		case efPlaceholder:
			// Only a placeholder as long as a cookie earns one, so the
			// reply is no larger than the request (RFC 8915 §5.7).
			if len(f.body) >= serverCookieNonce+siv.TagSize+2*siv.KeySize {
				placeholders++
			}
		case efAuth:
			if auth < 0 {
				auth = i
			}
		}
	}
	if uid == nil || cookie == nil || auth < 0 {
		return nil, &AuthError{Reason: "request lacks a unique identifier, a cookie or an authenticator"}
	}
	hdr, err := header(req[:ntpHeader])
	if err != nil {
		return nil, err
	}
	c2s, s2c, ok := s.openCookie(cookie)
	if !ok {
		nak := slices.Clone(hdr[:ntpHeader])
		nak[0] = 3<<6 | nak[0]&0x3f // leap: not synchronised
		nak[1] = 0
		copy(nak[12:16], "NTSN")
		return appendEF(nak, efUniqueID, uid), nil
	}
	in, err := siv.New(c2s)
	if err != nil {
		return nil, err
	}
	nonce, ct, err := parseAuth(efs[auth].body)
	if err != nil {
		return nil, &AuthError{Reason: err.Error()}
	}
	if _, err := in.Open(nil, ct, req[:efs[auth].start], nonce); err != nil {
		return nil, &AuthError{Reason: "request's authenticator does not verify"}
	}
	out, err := siv.New(s2c)
	if err != nil {
		return nil, err
	}
	var plain []byte
	for range 1 + min(placeholders, maxPlaceholders) {
		plain = appendEF(plain, efCookie, s.cookie(c2s, s2c))
	}
	p := appendEF(slices.Clone(hdr[:ntpHeader]), efUniqueID, uid)
	rn := make([]byte, nonceLen)
	rand.Read(rn)
	sealed := out.Seal(nil, plain, p, rn)
	return appendEF(p, efAuth, authBody(rn, sealed)), nil
}
