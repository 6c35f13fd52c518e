package store

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// PasswordParams are the argon2id cost parameters of new password hashes.
// CheckPassword reads the parameters from each hash, so raising them later
// keeps old hashes valid; see PasswordNeedsRehash.
type PasswordParams struct {
	MemoryKiB uint32
	Time      uint32
	Threads   uint8
	SaltLen   int
	KeyLen    uint32
}

// DefaultPasswordParams follow OWASP's argon2id recommendation (19 MiB,
// two passes, one lane): about 20 ms per hash on a small server.
var DefaultPasswordParams = PasswordParams{MemoryKiB: 19 * 1024, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}

// Bounds on parameters read from a stored hash, so a damaged or hostile
// hash cannot make CheckPassword allocate or spin without limit.
const (
	maxMemoryKiB = 1 << 20 // 1 GiB
	maxTime      = 64
	maxKeyLen    = 128
)

// b64 is the PHC format's base64: no padding; strict, so each hash has one
// spelling.
var b64 = base64.RawStdEncoding.Strict()

// HashPassword returns an argon2id hash of pw with DefaultPasswordParams in
// PHC string format: $argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>.
func HashPassword(pw string) (string, error) {
	return DefaultPasswordParams.Hash(pw)
}

// Hash returns an argon2id hash of pw with p, in PHC string format.
func (p PasswordParams) Hash(pw string) (string, error) {
	if p.MemoryKiB == 0 || p.Time == 0 || p.Threads == 0 || p.SaltLen < 8 || p.KeyLen < 16 {
		return "", fmt.Errorf("hash password: invalid argon2id parameters m=%d t=%d p=%d", p.MemoryKiB, p.Time, p.Threads)
	}
	salt := make([]byte, p.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("hash password: %v", err)
	}
	key := argon2.IDKey([]byte(pw), salt, p.Time, p.MemoryKiB, p.Threads, p.KeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.MemoryKiB, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// CheckPassword reports whether pw matches hash, a PHC argon2id string made
// by HashPassword. The comparison is constant-time. An empty, malformed or
// unsupported hash matches no password.
func CheckPassword(hash, pw string) bool {
	p, salt, want, ok := parsePHC(hash)
	if !ok {
		return false
	}
	got := argon2.IDKey([]byte(pw), salt, p.Time, p.MemoryKiB, p.Threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// PasswordNeedsRehash reports whether hash was made with parameters other
// than DefaultPasswordParams (or is not a valid hash), so a server can
// hash the password again after a successful sign-in.
func PasswordNeedsRehash(hash string) bool { return DefaultPasswordParams.NeedsRehash(hash) }

// NeedsRehash reports whether hash was made with parameters other than p
// (or is not a valid hash): after a successful sign-in the server hashes
// the password again with p, so raising the parameters reaches every
// hash at its owner's next sign-in.
func (p PasswordParams) NeedsRehash(hash string) bool {
	h, salt, key, ok := parsePHC(hash)
	return !ok || h.MemoryKiB != p.MemoryKiB || h.Time != p.Time || h.Threads != p.Threads ||
		len(salt) != p.SaltLen || len(key) != int(p.KeyLen)
}

func parsePHC(hash string) (p PasswordParams, salt, key []byte, ok bool) {
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, hash
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return p, nil, nil, false
	}
	if parts[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return p, nil, nil, false
	}
	var m, t, th uint32
	n, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &th)
	if err != nil || n != 3 || fmt.Sprintf("m=%d,t=%d,p=%d", m, t, th) != parts[3] {
		return p, nil, nil, false
	}
	if m == 0 || m > maxMemoryKiB || t == 0 || t > maxTime || th == 0 || th > 255 || m < 8*th {
		return p, nil, nil, false
	}
	// The decoder skips \r and \n; a stored hash has neither.
	if strings.ContainsAny(parts[4]+parts[5], "\r\n") {
		return p, nil, nil, false
	}
	salt, err1 := b64.DecodeString(parts[4])
	key, err2 := b64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(salt) < 8 || len(key) < 16 || len(key) > maxKeyLen {
		return p, nil, nil, false
	}
	p = PasswordParams{MemoryKiB: m, Time: t, Threads: uint8(th), SaltLen: len(salt), KeyLen: uint32(len(key))}
	return p, salt, key, true
}
