package nts

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"
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
			if tc.cookie != nil {
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
