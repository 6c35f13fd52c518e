package nts

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/totpbox/totpbox/clock/nts/siv"
)

// NTP extension field types of NTS (RFC 8915 §5.7).
const (
	efUniqueID    = 0x0104
	efCookie      = 0x0204
	efPlaceholder = 0x0304
	efAuth        = 0x0404
)

// ntpHeader is the length of an NTPv4 packet without extension fields.
const ntpHeader = 48

// uidLen and nonceLen are the lengths of the unique identifier and the
// nonce a client sends (RFC 8915 asks for at least 32 and 16).
const (
	uidLen   = 32
	nonceLen = 16
)

// AuthError is a reply that failed NTS: not authenticated by the server's
// key, or not an answer to the request it claims to answer. Its time must
// never be used.
type AuthError struct{ Reason string }

func (e *AuthError) Error() string { return "NTS: " + e.Reason }

// NAKError is an NTS-NAK (kiss code NTSN): the server could not use the
// cookie, so a new key exchange is needed.
type NAKError struct{}

func (e *NAKError) Error() string {
	return "NTS-NAK: the server refused the cookie (kiss-of-death NTSN)"
}

// pad4 rounds n up to a multiple of 4.
func pad4(n int) int { return (n + 3) &^ 3 }

// appendEF appends one extension field with body padded to 4 bytes.
func appendEF(b []byte, typ uint16, body []byte) []byte {
	n := 4 + pad4(len(body))
	b = binary.BigEndian.AppendUint16(b, typ)
	b = binary.BigEndian.AppendUint16(b, uint16(n))
	b = append(b, body...)
	return append(b, make([]byte, n-4-len(body))...)
}

// ef is one extension field of a packet: its type, body and offset.
type ef struct {
	typ   uint16
	body  []byte
	start int
}

// parseEFs splits the extension fields after the NTP header.
func parseEFs(p []byte, from int) ([]ef, error) {
	var out []ef
	for i := from; i < len(p); {
		if len(p)-i < 4 {
			return nil, errors.New("truncated extension field")
		}
		typ := binary.BigEndian.Uint16(p[i:])
		n := int(binary.BigEndian.Uint16(p[i+2:]))
		if n < 4 || n%4 != 0 || n > len(p)-i {
			return nil, fmt.Errorf("malformed extension field of length %d", n)
		}
		out = append(out, ef{typ: typ, body: p[i+4 : i+n], start: i})
		i += n
	}
	return out, nil
}

// authBody encodes the authenticator field's body: nonce and ciphertext
// lengths, then each padded to 4 bytes.
func authBody(nonce, ct []byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(len(nonce)))
	b = binary.BigEndian.AppendUint16(b, uint16(len(ct)))
	b = append(b, nonce...)
	b = append(b, make([]byte, pad4(len(nonce))-len(nonce))...)
	b = append(b, ct...)
	return append(b, make([]byte, pad4(len(ct))-len(ct))...)
}

// parseAuth splits an authenticator field's body into nonce and
// ciphertext.
func parseAuth(body []byte) (nonce, ct []byte, err error) {
	if len(body) < 4 {
		return nil, nil, errors.New("authenticator too short")
	}
	nl := int(binary.BigEndian.Uint16(body))
	cl := int(binary.BigEndian.Uint16(body[2:]))
	if 4+pad4(nl)+pad4(cl) > len(body) || cl < siv.TagSize {
		return nil, nil, errors.New("authenticator lengths exceed the field")
	}
	return body[4 : 4+nl], body[4+pad4(nl) : 4+pad4(nl)+cl], nil
}

// Query protects one NTP request and checks its reply. Its methods have
// the shape of beevik/ntp's Extension. A Query is used once.
type Query struct {
	c2s, s2c     *siv.SIV
	cookie       []byte
	placeholders int
	uid          [uidLen]byte
	// NewCookies are the cookies an authenticated reply carried.
	NewCookies [][]byte
	// Authenticated reports whether ProcessResponse accepted the reply.
	Authenticated bool
}

// NewQuery returns a query that spends cookie and asks for placeholders
// more cookies than the one it gets back for it.
func NewQuery(c2s, s2c, cookie []byte, placeholders int) (*Query, error) {
	a, err := siv.New(c2s)
	if err != nil {
		return nil, err
	}
	b, err := siv.New(s2c)
	if err != nil {
		return nil, err
	}
	q := &Query{c2s: a, s2c: b, cookie: cookie, placeholders: placeholders}
	rand.Read(q.uid[:])
	return q, nil
}

// ProcessQuery appends the unique identifier, the cookie, the
// placeholders and the authenticator to the request in buf.
func (q *Query) ProcessQuery(buf *bytes.Buffer) error {
	p := buf.Bytes()
	p = appendEF(p, efUniqueID, q.uid[:])
	p = appendEF(p, efCookie, q.cookie)
	for range q.placeholders {
		p = appendEF(p, efPlaceholder, make([]byte, len(q.cookie)))
	}
	nonce := make([]byte, nonceLen)
	rand.Read(nonce)
	ct := q.c2s.Seal(nil, nil, p, nonce)
	p = appendEF(p, efAuth, authBody(nonce, ct))
	buf.Reset()
	buf.Write(p)
	return nil
}

// ProcessResponse accepts the reply only if it echoes the unique
// identifier inside the authenticated part and the authenticator verifies
// with the server's key; it keeps the cookies of the encrypted part. An
// NTS-NAK that echoes the identifier gives a NAKError.
func (q *Query) ProcessResponse(p []byte) error {
	if len(p) < ntpHeader {
		return &AuthError{Reason: "reply shorter than an NTP header"}
	}
	efs, err := parseEFs(p, ntpHeader)
	if err != nil {
		return &AuthError{Reason: err.Error()}
	}
	uid, auth := -1, -1
	for i, f := range efs {
		switch f.typ {
		case efUniqueID:
			if uid < 0 && subtle.ConstantTimeCompare(f.body, q.uid[:]) == 1 {
				uid = i
			}
		case efAuth:
			if auth < 0 {
				auth = i
			}
		}
	}
	if p[1] == 0 && string(p[12:16]) == "NTSN" {
		if uid < 0 {
			return &AuthError{Reason: "NTS-NAK for another request"}
		}
		return &NAKError{}
	}
	switch {
	case uid < 0:
		return &AuthError{Reason: "reply does not echo the request's unique identifier"}
	case auth < 0:
		return &AuthError{Reason: "reply is not authenticated"}
	case uid > auth:
		return &AuthError{Reason: "unique identifier outside the authenticated part"}
	}
	nonce, ct, err := parseAuth(efs[auth].body)
	if err != nil {
		return &AuthError{Reason: err.Error()}
	}
	plain, err := q.s2c.Open(nil, ct, p[:efs[auth].start], nonce)
	if err != nil {
		return &AuthError{Reason: "authenticator does not verify: reply forged or changed on the way"}
	}
	inner, err := parseEFs(plain, 0)
	if err != nil {
		return &AuthError{Reason: "encrypted fields: " + err.Error()}
	}
	for _, f := range inner {
		if f.typ == efCookie && len(f.body) > 0 && len(f.body) <= maxCookieLen {
			q.NewCookies = append(q.NewCookies, bytes.Clone(f.body))
		}
	}
	q.Authenticated = true
	return nil
}
