package siv

import (
	"bytes"
	"crypto/aes"
	"encoding/hex"
	"strings"
	"testing"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCMAC checks AES-CMAC against RFC 4493 §4: the subkeys and the four
// examples (empty, one block, a partial last block, four blocks).
func TestCMAC(t *testing.T) {
	b, err := aes.NewCipher(unhex(t, "2b7e1516 28aed2a6 abf71588 09cf4f3c"))
	if err != nil {
		t.Fatal(err)
	}
	c := newCMAC(b)
	if got, want := c.k1[:], unhex(t, "fbeed618 35713366 7c85e08f 7236a8de"); !bytes.Equal(got, want) {
		t.Errorf("K1 = %x, want %x", got, want)
	}
	if got, want := c.k2[:], unhex(t, "f7ddac30 6ae266cc f90bc11e e46d513b"); !bytes.Equal(got, want) {
		t.Errorf("K2 = %x, want %x", got, want)
	}
	msg := unhex(t, "6bc1bee2 2e409f96 e93d7e11 7393172a ae2d8a57 1e03ac9c 9eb76fac 45af8e51"+
		"30c81c46 a35ce411 e5fbc119 1a0a52ef f69f2445 df4f9b17 ad2b417b e66c3710")
	for _, tc := range []struct {
		n    int
		want string
	}{
		{0, "bb1d6929 e9593728 7fa37d12 9b756746"},
		{16, "070a16b4 6b4d4144 f79bdd9d d04a287c"},
		{40, "dfa66747 de9ae630 30ca3261 1497c827"},
		{64, "51f0bebf 7e3b9d92 fc497417 79363cfe"},
	} {
		got := c.sum(msg[:tc.n])
		if want := unhex(t, tc.want); !bytes.Equal(got[:], want) {
			t.Errorf("CMAC(%d bytes) = %x, want %x", tc.n, got, want)
		}
	}
}

// TestRFC5297 checks Seal and Open against RFC 5297 appendix A: A.1
// (deterministic: one associated data component, no nonce) and A.2
// (nonce-based: two components, then the nonce as the last one).
func TestRFC5297(t *testing.T) {
	for _, tc := range []struct {
		name      string
		key       string
		ad        []string
		plaintext string
		want      string
	}{
		{
			name:      "A.1 deterministic",
			key:       "fffefdfc fbfaf9f8 f7f6f5f4 f3f2f1f0 f0f1f2f3 f4f5f6f7 f8f9fafb fcfdfeff",
			ad:        []string{"10111213 14151617 18191a1b 1c1d1e1f 20212223 24252627"},
			plaintext: "11223344 55667788 99aabbcc ddee",
			want:      "85632d07 c6e8f37f 950acd32 0a2ecc93 40c02b96 90c4dc04 daef7f6a fe5c",
		},
		{
			name: "A.2 nonce-based",
			key:  "7f7e7d7c 7b7a7978 77767574 73727170 40414243 44454647 48494a4b 4c4d4e4f",
			ad: []string{
				"00112233 44556677 8899aabb ccddeeff deaddada deaddada ffeeddcc bbaa9988 77665544 33221100",
				"10203040 50607080 90a0",
				"09f91102 9d74e35b d84156c5 635688c0", // the nonce
			},
			plaintext: "74686973 20697320 736f6d65 20706c61 696e7465 78742074 6f20656e 63727970 74207573 696e6720 5349562d 414553",
			want: "7bdb6e3b 432667eb 06f4d14b ff2fbd0f cb900f2f ddbe4043 26601965 c889bf17" +
				"dba77ceb 094fa663 b7a3f748 ba8af829 ea64ad54 4a272e9c 485b62a3 fd5c0d",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(unhex(t, tc.key))
			if err != nil {
				t.Fatal(err)
			}
			var ad [][]byte
			for _, a := range tc.ad {
				ad = append(ad, unhex(t, a))
			}
			p, want := unhex(t, tc.plaintext), unhex(t, tc.want)
			if got := s.Seal(nil, p, ad...); !bytes.Equal(got, want) {
				t.Fatalf("Seal = %x, want %x", got, want)
			}
			got, err := s.Open(nil, want, ad...)
			if err != nil || !bytes.Equal(got, p) {
				t.Fatalf("Open = %x, %v; want %x", got, err, p)
			}
			// Any changed bit, in the tag, the ciphertext or an associated
			// data component, fails.
			for i := range len(want) * 8 {
				bad := bytes.Clone(want)
				bad[i/8] ^= 1 << (i % 8)
				if got, err := s.Open(nil, bad, ad...); err != ErrOpen || got != nil {
					t.Fatalf("Open with bit %d flipped = %x, %v; want nil, ErrOpen", i, got, err)
				}
			}
			for j := range ad {
				bad := append([][]byte(nil), ad...)
				bad[j] = append(bytes.Clone(ad[j]), 0)
				if _, err := s.Open(nil, want, bad...); err != ErrOpen {
					t.Fatalf("Open with component %d changed = %v, want ErrOpen", j, err)
				}
			}
			if _, err := s.Open(nil, want, ad[:len(ad)-1]...); err != ErrOpen {
				t.Fatalf("Open without the last component = %v, want ErrOpen", err)
			}
		})
	}
}

// TestSealLengths round-trips plaintexts around the block size, where S2V
// switches between padding and xorend, and appends to dst.
func TestSealLengths(t *testing.T) {
	s, err := New(bytes.Repeat([]byte{7}, KeySize))
	if err != nil {
		t.Fatal(err)
	}
	for n := range 50 {
		p := bytes.Repeat([]byte{byte(n)}, n)
		out := s.Seal([]byte("hdr"), p, []byte("ad"), []byte("nonce-0123456789"))
		if !bytes.HasPrefix(out, []byte("hdr")) || len(out) != 3+TagSize+n {
			t.Fatalf("Seal(%d bytes) = %d bytes, want hdr + %d", n, len(out), TagSize+n)
		}
		got, err := s.Open(nil, out[3:], []byte("ad"), []byte("nonce-0123456789"))
		if err != nil || !bytes.Equal(got, p) {
			t.Fatalf("Open(Seal(%d bytes)) = %x, %v", n, got, err)
		}
	}
}

func TestNewKeySize(t *testing.T) {
	for _, n := range []int{0, 16, 31, 33, 64} {
		if _, err := New(make([]byte, n)); err == nil {
			t.Errorf("New(%d-byte key) = nil error, want one", n)
		}
	}
}

func BenchmarkSeal48(b *testing.B) {
	s, _ := New(make([]byte, KeySize))
	p, a, n := make([]byte, 48), make([]byte, 48), make([]byte, 16)
	b.ReportAllocs()
	for b.Loop() {
		s.Seal(nil, p, a, n)
	}
}
