package nts

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"
)

// request is an NTP client request header (mode 3, version 4).
func request() []byte {
	p := make([]byte, ntpHeader)
	p[0] = 4<<3 | 3
	rand.Read(p[40:])
	return p
}

// header answers with a server reply header (mode 4) echoing the origin.
func header(req []byte) ([]byte, error) {
	p := make([]byte, ntpHeader)
	p[0] = 4<<3 | 4
	p[1] = 1
	copy(p[24:32], req[40:48])
	return p, nil
}

// TestServerRespond: the server side answers a query made by Query so that
// Query accepts it and gets a cookie per placeholder plus one; a cookie
// from another server gets an NTS-NAK; a changed request, or one without
// NTS fields, gets no reply.
func TestServerRespond(t *testing.T) {
	srv, err := NewServer()
	if err != nil {
		t.Fatal(err)
	}
	other, _ := NewServer()
	c2s, s2c := make([]byte, 32), make([]byte, 32)
	rand.Read(c2s)
	rand.Read(s2c)
	for _, tc := range []struct {
		name    string
		cookie  []byte
		change  func([]byte)
		wantErr func(respondErr, processErr error) bool
		cookies int
	}{
		{"valid", srv.cookie(c2s, s2c), nil, func(r, p error) bool { return r == nil && p == nil }, 3},
		{"placeholders shorter than a cookie", srv.cookie(c2s, s2c), nil, func(r, p error) bool { return r == nil && p == nil }, 1},
		{"cookie of another server", other.cookie(c2s, s2c), nil, func(r, p error) bool {
			var nak *NAKError
			return r == nil && errors.As(p, &nak)
		}, 0},
		{"request changed on the way", srv.cookie(c2s, s2c), func(p []byte) { p[41] ^= 1 }, func(r, _ error) bool {
			var ae *AuthError
			return errors.As(r, &ae)
		}, 0},
		{"plain NTP", nil, nil, func(r, _ error) bool { return errors.Is(r, ErrNotNTS) }, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			buf := bytes.NewBuffer(request())
			q, err := NewQuery(c2s, s2c, tc.cookie, 2)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case strings.HasPrefix(tc.name, "placeholders shorter"):
				// Two 4-byte placeholders: they earn no extra cookie.
				p := appendEF(buf.Bytes(), efUniqueID, q.uid[:])
				p = appendEF(p, efCookie, tc.cookie)
				p = appendEF(p, efPlaceholder, make([]byte, 4))
				p = appendEF(p, efPlaceholder, make([]byte, 4))
				nonce := make([]byte, nonceLen)
				rand.Read(nonce)
				p = appendEF(p, efAuth, authBody(nonce, q.c2s.Seal(nil, nil, p, nonce)))
				buf = bytes.NewBuffer(p)
			case tc.cookie != nil:
				q.ProcessQuery(buf)
			}
			req := buf.Bytes()
			if tc.change != nil {
				tc.change(req)
			}
			resp, rerr := srv.Respond(req, header)
			var perr error
			if rerr == nil {
				perr = q.ProcessResponse(resp)
			}
			if !tc.wantErr(rerr, perr) {
				t.Fatalf("Respond: %v, ProcessResponse: %v", rerr, perr)
			}
			if len(q.NewCookies) != tc.cookies || tc.cookies > 0 && !q.Authenticated {
				t.Errorf("%d new cookies, authenticated %v; want %d", len(q.NewCookies), q.Authenticated, tc.cookies)
			}
			for _, c := range q.NewCookies {
				if a, b, ok := srv.openCookie(c); !ok || !bytes.Equal(a, c2s) || !bytes.Equal(b, s2c) {
					t.Errorf("new cookie does not hold the session's keys")
				}
			}
		})
	}
}

// selfSigned is a certificate for 127.0.0.1 and a pool trusting it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

// TestServeKE: the client's Exchange against the server side gets the
// next protocol, the AEAD, eight cookies holding the keys both sides
// exported, and the server and port records; a client offering another
// AEAD gets error record 1 (bad request).
func TestServeKE(t *testing.T) {
	cert, pool := selfSigned(t)
	srv, _ := NewServer()
	srv.NTPServer, srv.NTPPort = "ntp.example.test", 1123
	conf := &tls.Config{Certificates: []tls.Certificate{cert}}
	pipeDial := func(context.Context, string, string) (net.Conn, error) {
		c, s := net.Pipe()
		go srv.ServeKEConn(s, conf)
		return c, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sess, err := Exchange(ctx, pipeDial, "127.0.0.1", DefaultKEPort, &tls.Config{RootCAs: pool})
	if err != nil {
		t.Fatal(err)
	}
	if len(sess.Cookies) != 8 || sess.NTPAddress() != "ntp.example.test:1123" {
		t.Fatalf("session: %d cookies, NTP at %s; want 8 and ntp.example.test:1123", len(sess.Cookies), sess.NTPAddress())
	}
	for _, c := range sess.Cookies {
		if a, b, ok := srv.openCookie(c); !ok || !bytes.Equal(a, sess.C2S) || !bytes.Equal(b, sess.S2C) {
			t.Fatal("a cookie does not hold the keys the client exported")
		}
	}

	c, s := net.Pipe()
	go srv.ServeKEConn(s, conf)
	tc := tls.Client(c, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", NextProtos: []string{ALPN}, MinVersion: tls.VersionTLS13})
	defer c.Close()
	tc.SetDeadline(time.Now().Add(10 * time.Second))
	var req []byte
	req = appendRecord(req, criticalBit|recNextProto, u16s(protoNTPv4))
	req = appendRecord(req, recAEAD, u16s(30))
	req = appendRecord(req, criticalBit|recEnd, nil)
	if _, err := tc.Write(req); err != nil {
		t.Fatal(err)
	}
	_, err = readKEReply(tc, "127.0.0.1")
	if err == nil || !strings.Contains(err.Error(), "server sent error 1") {
		t.Errorf("reply to an unknown AEAD: %v, want error record 1", err)
	}
}
