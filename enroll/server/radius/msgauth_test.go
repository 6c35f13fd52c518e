package radius

import (
	"encoding/hex"
	"errors"
	"testing"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2869"
)

// radclientRequest is an Access-Request sent by FreeRADIUS 3.2.1's
// radclient with shared secret "xyzzy5461": User-Name "alice",
// User-Password "123456", Message-Authenticator, NAS-Identifier "vpn".
const radclientRequest = "01c20044038d7c98f76b995415810e980e66a7230107616c69636502127d8c2bd2bbd72d191bfaf9eacfb651fc5012ff6f205a681169b0270ef7002c6f36b0200576706e"

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCheckMessageAuthenticatorKnownVector(t *testing.T) {
	raw := mustHex(t, radclientRequest)
	secret := []byte("xyzzy5461")
	if err := checkMessageAuthenticator(raw, secret); err != nil {
		t.Fatalf("checkMessageAuthenticator(radclient's request) = %v, want nil", err)
	}
	p, err := radius.Parse(raw, secret)
	if err != nil {
		t.Fatal(err)
	}
	if got := rfc2865.UserPassword_GetString(p); got != "123456" {
		t.Errorf("User-Password = %q, want 123456", got)
	}
	flipped := func(i int) []byte {
		b := append([]byte(nil), raw...)
		b[i] ^= 1
		return b
	}
	noMA := func() []byte {
		p, _ := radius.Parse(raw, secret)
		p.Attributes.Del(rfc2869.MessageAuthenticator_Type)
		b, _ := p.MarshalBinary()
		return b
	}
	twoMA := func() []byte {
		p, _ := radius.Parse(raw, secret)
		p.Attributes.Add(rfc2869.MessageAuthenticator_Type, rfc2869.MessageAuthenticator_Get(p))
		b, _ := p.MarshalBinary()
		return b
	}
	shortMA := func() []byte {
		p, _ := radius.Parse(raw, secret)
		p.Attributes.Del(rfc2869.MessageAuthenticator_Type)
		p.Attributes.Add(rfc2869.MessageAuthenticator_Type, make(radius.Attribute, 15))
		b, _ := p.MarshalBinary()
		return b
	}
	for _, tc := range []struct {
		name   string
		raw    []byte
		secret string
		want   error
	}{
		{"wrong secret", raw, "xyzzy5462", errBadMessageAuthenticator},
		{"identifier changed", flipped(1), "xyzzy5461", errBadMessageAuthenticator},
		{"authenticator changed", flipped(4), "xyzzy5461", errBadMessageAuthenticator},
		{"user name changed", flipped(22), "xyzzy5461", errBadMessageAuthenticator},
		{"HMAC changed", flipped(len(raw) - 7), "xyzzy5461", errBadMessageAuthenticator},
		{"none", noMA(), "xyzzy5461", errNoMessageAuthenticator},
		{"two", twoMA(), "xyzzy5461", errBadMessageAuthenticator},
		{"15 octets", shortMA(), "xyzzy5461", errBadMessageAuthenticator},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := checkMessageAuthenticator(tc.raw, []byte(tc.secret)); !errors.Is(err, tc.want) {
				t.Errorf("checkMessageAuthenticator = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestSignRequest(t *testing.T) {
	secret := []byte("xyzzy5461")
	// The HMAC-MD5 over radclient's request with the attribute zeroed is
	// the value radclient sent.
	q, _ := radius.Parse(mustHex(t, radclientRequest), secret)
	rfc2869.MessageAuthenticator_Set(q, make([]byte, 16))
	zeroed, _ := q.MarshalBinary()
	if got := hmacMD5(secret, zeroed); hex.EncodeToString(got) != "ff6f205a681169b0270ef7002c6f36b0" {
		t.Errorf("HMAC-MD5 over radclient's zeroed request = %x, want ff6f205a681169b0270ef7002c6f36b0", got)
	}
	p := radius.New(radius.CodeAccessRequest, secret)
	rfc2865.UserName_SetString(p, "alice")
	b, err := signRequest(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkMessageAuthenticator(b, secret); err != nil {
		t.Errorf("checkMessageAuthenticator(signRequest(p)) = %v", err)
	}
}

func TestEncodeReply(t *testing.T) {
	raw := mustHex(t, radclientRequest)
	secret := []byte("xyzzy5461")
	req, _ := radius.Parse(raw, secret)
	rep := req.Response(radius.CodeAccessAccept)
	rfc2865.ReplyMessage_SetString(rep, "welcome")
	b, err := encodeReply(rep)
	if err != nil {
		t.Fatal(err)
	}
	if !radius.IsAuthenticResponse(b, raw, secret) {
		t.Fatal("reply's Response Authenticator does not check")
	}
	// The reply's HMAC is over the reply with the request's authenticator
	// in its authenticator field and the attribute zeroed.
	at := len(b) - maLen
	if radius.Type(b[at]) != rfc2869.MessageAuthenticator_Type {
		t.Fatalf("last attribute is %d, want Message-Authenticator", b[at])
	}
	buf := append([]byte(nil), b...)
	copy(buf[4:20], raw[4:20])
	clear(buf[at+2:])
	if got, want := hmacMD5(secret, buf), b[at+2:]; !equalBytes(got, want) {
		t.Errorf("reply Message-Authenticator = %x, want %x", want, got)
	}
	if checkMessageAuthenticator(b, []byte("other")) == nil {
		t.Error("reply checks with another secret")
	}
}
