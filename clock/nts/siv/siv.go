// Package siv is AES-SIV-CMAC (RFC 5297), the AEAD that Network Time
// Security requires: AEAD_AES_SIV_CMAC_256 (AEAD algorithm 15), a 32-byte
// key made of two AES-128 keys, one for S2V (CMAC) and one for CTR.
//
// SIV is misuse-resistant: the synthetic IV is a MAC over every associated
// data component and the plaintext, so a repeated nonce reveals only that
// the same message was sent twice. NTS passes the nonce as the last
// associated data component, as RFC 5297 §3 allows.
//
// CMAC (RFC 4493) is written here over crypto/aes; no module served to
// the build implements either.
package siv

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"errors"
	"fmt"
)

// KeySize is the key length of AEAD_AES_SIV_CMAC_256: two AES-128 keys.
const KeySize = 32

// TagSize is the length of the synthetic IV that precedes the ciphertext.
const TagSize = aes.BlockSize

// maxComponents is the largest number of associated data components plus
// the plaintext S2V accepts (RFC 5297 §2.4: at most 127 vectors).
const maxComponents = 127

// ErrOpen is returned when a ciphertext fails authentication.
var ErrOpen = errors.New("siv: message authentication failed")

// SIV holds the two keys of AES-SIV-CMAC-256. It is safe for concurrent
// use.
type SIV struct {
	mac cmac
	ctr cipher.Block
}

// New returns AES-SIV for a 32-byte key: the first half keys S2V, the
// second half keys CTR (RFC 5297 §2.6).
func New(key []byte) (*SIV, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("siv: key is %d bytes, want %d", len(key), KeySize)
	}
	m, err := aes.NewCipher(key[:16])
	if err != nil {
		return nil, err
	}
	c, err := aes.NewCipher(key[16:])
	if err != nil {
		return nil, err
	}
	return &SIV{mac: newCMAC(m), ctr: c}, nil
}

// Seal encrypts and authenticates plaintext with the associated data
// components ad (for NTS: the associated data, then the nonce), appends
// the synthetic IV and the ciphertext to dst and returns the result.
func (s *SIV) Seal(dst, plaintext []byte, ad ...[]byte) []byte {
	if len(ad)+1 > maxComponents {
		panic("siv: too many associated data components")
	}
	v := s.s2v(ad, plaintext)
	ret, out := sliceForAppend(dst, TagSize+len(plaintext))
	copy(out, v[:])
	s.xorCTR(out[TagSize:], plaintext, v)
	return ret
}

// Open checks and decrypts ciphertext (the synthetic IV then the
// encrypted text) sealed with the same associated data components, and
// appends the plaintext to dst. It returns ErrOpen, and nothing of the
// plaintext, when the ciphertext or any component was changed.
func (s *SIV) Open(dst, ciphertext []byte, ad ...[]byte) ([]byte, error) {
	if len(ciphertext) < TagSize || len(ad)+1 > maxComponents {
		return nil, ErrOpen
	}
	var v [TagSize]byte
	copy(v[:], ciphertext)
	body := ciphertext[TagSize:]
	ret, out := sliceForAppend(dst, len(body))
	s.xorCTR(out, body, v)
	t := s.s2v(ad, out)
	if subtle.ConstantTimeCompare(t[:], v[:]) != 1 {
		clear(out)
		return nil, ErrOpen
	}
	return ret, nil
}

// Overhead is how much longer a sealed message is than its plaintext.
func (s *SIV) Overhead() int { return TagSize }

// s2v is RFC 5297 §2.4's S2V over the components ad and then p.
func (s *SIV) s2v(ad [][]byte, p []byte) [16]byte {
	var zero [16]byte
	d := s.mac.sum(zero[:])
	for _, a := range ad {
		d = dbl(d)
		m := s.mac.sum(a)
		subtle.XORBytes(d[:], d[:], m[:])
	}
	if len(p) >= 16 {
		// T = Sn xorend D: the last 16 bytes of p are xored with D.
		t := make([]byte, len(p))
		copy(t, p)
		subtle.XORBytes(t[len(t)-16:], t[len(t)-16:], d[:])
		return s.mac.sum(t)
	}
	d = dbl(d)
	var t [16]byte
	copy(t[:], p)
	t[len(p)] = 0x80
	subtle.XORBytes(t[:], t[:], d[:])
	return s.mac.sum(t[:])
}

// xorCTR encrypts (or decrypts) src into dst with AES-CTR keyed by the
// CTR key, starting from the synthetic IV v with bits 63 and 31 cleared
// (RFC 5297 §2.5), so implementations with a 32- or 64-bit counter agree.
func (s *SIV) xorCTR(dst, src []byte, v [16]byte) {
	q := v
	q[8] &= 0x7f
	q[12] &= 0x7f
	cipher.NewCTR(s.ctr, q[:]).XORKeyStream(dst, src)
}

// sliceForAppend extends in by n bytes and returns the whole slice and
// the n new bytes.
func sliceForAppend(in []byte, n int) (head, tail []byte) {
	if total := len(in) + n; cap(in) >= total {
		head = in[:total]
	} else {
		head = make([]byte, total)
		copy(head, in)
	}
	return head, head[len(in):]
}
