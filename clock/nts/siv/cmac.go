package siv

import (
	"crypto/cipher"
	"crypto/subtle"
)

// cmac is AES-CMAC (RFC 4493) with its two subkeys derived once.
type cmac struct {
	b      cipher.Block
	k1, k2 [16]byte
}

// newCMAC derives the subkeys of b (RFC 4493 §2.3).
func newCMAC(b cipher.Block) cmac {
	var l [16]byte
	b.Encrypt(l[:], l[:])
	k1 := dbl(l)
	return cmac{b: b, k1: k1, k2: dbl(k1)}
}

// sum returns the 16-byte CMAC of m (RFC 4493 §2.4).
func (c *cmac) sum(m []byte) [16]byte {
	var x [16]byte
	// Every block but the last is chained plainly; the last is xored with
	// K1 when complete and with K2 after 10* padding otherwise.
	for len(m) > 16 {
		subtle.XORBytes(x[:], x[:], m[:16])
		c.b.Encrypt(x[:], x[:])
		m = m[16:]
	}
	var last [16]byte
	if len(m) == 16 {
		subtle.XORBytes(last[:], m, c.k1[:])
	} else {
		copy(last[:], m)
		last[len(m)] = 0x80
		subtle.XORBytes(last[:], last[:], c.k2[:])
	}
	subtle.XORBytes(x[:], x[:], last[:])
	c.b.Encrypt(x[:], x[:])
	return x
}

// dbl is multiplication by x in GF(2^128) with the polynomial
// x^128 + x^7 + x^2 + x + 1 (RFC 5297 §2.3, RFC 4493's subkey shift),
// branch-free in the top bit.
func dbl(in [16]byte) [16]byte {
	var out [16]byte
	carry := in[0] >> 7
	for i := range 15 {
		out[i] = in[i]<<1 | in[i+1]>>7
	}
	out[15] = in[15]<<1 ^ (0x87 & -carry)
	return out
}
