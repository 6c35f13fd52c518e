package store_test

import (
	"strings"
	"testing"

	"github.com/totpbox/totpbox/enroll/store"
)

// fast keeps the tests quick; the format and checks are the same.
var fast = store.PasswordParams{MemoryKiB: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

func TestHashPassword(t *testing.T) {
	h, err := store.HashPassword("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("HashPassword = %q, want a PHC argon2id string with the default parameters", h)
	}
	if !store.CheckPassword(h, "correct horse") || store.CheckPassword(h, "correct horse ") {
		t.Errorf("CheckPassword on a default hash is wrong")
	}
	if store.PasswordNeedsRehash(h) {
		t.Errorf("PasswordNeedsRehash(default hash) = true")
	}
	h2, _ := store.HashPassword("correct horse")
	if h2 == h {
		t.Errorf("two hashes of one password are equal: salt not random")
	}
}

func TestCheckPassword(t *testing.T) {
	h, err := fast.Hash("s3cret")
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(h, "$")
	with := func(i int, v string) string {
		p := append([]string(nil), parts...)
		p[i] = v
		return strings.Join(p, "$")
	}
	tests := []struct {
		name, hash, pw string
		want           bool
	}{
		{"match", h, "s3cret", true},
		{"wrong password", h, "s3creT", false},
		{"empty password", h, "", false},
		{"empty hash", "", "s3cret", false},
		{"argon2i", with(1, "argon2i"), "s3cret", false},
		{"other version", with(2, "v=16"), "s3cret", false},
		{"changed cost", with(3, "m=64,t=2,p=1"), "s3cret", false},
		{"huge memory", with(3, "m=4294967295,t=1,p=1"), "s3cret", false},
		{"junk params", with(3, "m=64,t=1,p=1,x=2"), "s3cret", false},
		{"bad salt", with(4, "!!"), "s3cret", false},
		{"short hash", with(5, "AAAA"), "s3cret", false},
		{"missing part", strings.Join(parts[:5], "$"), "s3cret", false},
		{"bcrypt", "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy", "s3cret", false},
	}
	for _, tc := range tests {
		if got := store.CheckPassword(tc.hash, tc.pw); got != tc.want {
			t.Errorf("CheckPassword(%s) = %v, want %v", tc.name, got, tc.want)
		}
	}
	if !store.PasswordNeedsRehash(h) {
		t.Errorf("PasswordNeedsRehash(cheap hash) = false")
	}
	if _, err := (store.PasswordParams{}).Hash("x"); err == nil {
		t.Errorf("Hash with zero parameters succeeded")
	}
}
