package radius

import (
	"crypto/hmac"
	"crypto/md5"
	"errors"

	"layeh.com/radius"
	"layeh.com/radius/rfc2869"
)

// Message-Authenticator (RFC 3579 section 3.2, RFC 2869 section 5.14):
// HMAC-MD5, keyed with the shared secret, over the whole packet with the
// attribute's own 16 octets zeroed. On an Access-Request the packet's
// authenticator field holds the Request Authenticator; on a reply the
// HMAC is computed with the Request Authenticator of the request it
// answers in that field, before the Response Authenticator is computed
// over the packet, Message-Authenticator included. layeh.com/radius
// defines the attribute but neither checks nor computes it.

// maLen is the length of the Message-Authenticator attribute on the wire:
// type, length and 16 octets of HMAC-MD5.
const maLen = 2 + md5.Size

// Errors of checkMessageAuthenticator.
var (
	errNoMessageAuthenticator  = errors.New("no Message-Authenticator")
	errBadMessageAuthenticator = errors.New("Message-Authenticator does not match (wrong shared secret?)")
)

// checkMessageAuthenticator checks the Message-Authenticator of raw, a
// request as received (its attributes already parsed by radius.Parse),
// against secret. It returns errNoMessageAuthenticator when the packet
// carries none, and errBadMessageAuthenticator when it carries a wrong
// one, one of the wrong length, or more than one.
func checkMessageAuthenticator(raw, secret []byte) error {
	if len(raw) < 20 {
		return errBadMessageAuthenticator
	}
	length := int(raw[2])<<8 | int(raw[3])
	if length < 20 || length > len(raw) {
		return errBadMessageAuthenticator
	}
	raw = raw[:length]
	at := -1
	for i := 20; i+2 <= len(raw); {
		l := int(raw[i+1])
		if l < 2 || i+l > len(raw) {
			return errBadMessageAuthenticator
		}
		if radius.Type(raw[i]) == rfc2869.MessageAuthenticator_Type {
			if at >= 0 || l != maLen {
				return errBadMessageAuthenticator
			}
			at = i
		}
		i += l
	}
	if at < 0 {
		return errNoMessageAuthenticator
	}
	buf := append([]byte(nil), raw...)
	clear(buf[at+2 : at+maLen])
	mac := hmac.New(md5.New, secret)
	mac.Write(buf)
	if !hmac.Equal(mac.Sum(nil), raw[at+2:at+maLen]) {
		return errBadMessageAuthenticator
	}
	return nil
}

// encodeReply encodes p, a reply made by Packet.Response (so its
// Authenticator is the request's), with a Message-Authenticator computed
// as RFC 3579 asks and the Response Authenticator over it.
func encodeReply(p *radius.Packet) ([]byte, error) {
	_, mac, err := withMessageAuthenticator(p)
	if err != nil {
		return nil, err
	}
	p.Attributes.Del(rfc2869.MessageAuthenticator_Type)
	p.Attributes.Add(rfc2869.MessageAuthenticator_Type, mac)
	return p.Encode()
}

// signRequest adds a Message-Authenticator to p, an Access-Request, and
// encodes it: what a NAS does, for tests and the benchmark's client.
func signRequest(p *radius.Packet) ([]byte, error) {
	b, mac, err := withMessageAuthenticator(p)
	if err != nil {
		return nil, err
	}
	copy(b[len(b)-md5.Size:], mac)
	return b, nil
}

// withMessageAuthenticator puts a zeroed Message-Authenticator last in p
// and returns p's encoding with it and the HMAC-MD5 over that encoding
// (RFC 3579 3.2), which is the attribute's value.
func withMessageAuthenticator(p *radius.Packet) (b, mac []byte, err error) {
	p.Attributes.Del(rfc2869.MessageAuthenticator_Type)
	p.Attributes.Add(rfc2869.MessageAuthenticator_Type, make(radius.Attribute, md5.Size))
	if b, err = p.MarshalBinary(); err != nil {
		return nil, nil, err
	}
	h := hmac.New(md5.New, p.Secret)
	h.Write(b)
	return b, h.Sum(nil), nil
}
