package store

import (
	"fmt"
	"strings"
	"testing"
)

// FuzzParsePHC: any string parses or is refused without panicking, and a
// parsed hash has bounded parameters and prints back to itself.
func FuzzParsePHC(f *testing.F) {
	h, _ := PasswordParams{MemoryKiB: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}.Hash("pw")
	for _, s := range []string{h, "", "$argon2id$v=19$m=0,t=0,p=0$$", "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", "$$$$$"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, salt, key, ok := parsePHC(s)
		if !ok {
			return
		}
		if p.MemoryKiB > maxMemoryKiB || p.Time > maxTime || len(key) > maxKeyLen || p.Threads == 0 {
			t.Fatalf("parsePHC(%q) accepted out-of-bounds parameters %+v", s, p)
		}
		again := fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$%s$%s", p.MemoryKiB, p.Time, p.Threads,
			b64.EncodeToString(salt), b64.EncodeToString(key))
		if again != s {
			t.Fatalf("parsePHC(%q) prints back as %q", s, again)
		}
	})
}

// FuzzParseKeys: any text parses or is refused without panicking, and an
// error never quotes the text.
func FuzzParseKeys(f *testing.F) {
	f.Add("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
	f.Add("# c\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8, AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
	f.Add("secret-looking-garbage-text")
	f.Fuzz(func(t *testing.T, text string) {
		keys, err := ParseKeys(text)
		if err != nil {
			for _, field := range strings.Fields(text) {
				if len(field) >= 8 && strings.Contains(err.Error(), field) {
					t.Fatalf("ParseKeys error %q quotes the input", err)
				}
			}
			return
		}
		for _, k := range keys {
			if len(k.Key) != KeySize || k.ID != KeyID(k.Key) {
				t.Fatalf("ParseKeys returned a bad key: %d bytes, id %q", len(k.Key), k.ID)
			}
		}
	})
}
