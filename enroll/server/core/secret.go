package core

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
)

// RandomToken returns 32 random bytes in unpadded base64url: a session
// cookie, a CSRF token or the secret part of an API token.
func RandomToken() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// HashToken returns the SHA-256 of a token, which is what the store keeps
// of sessions and API tokens.
func HashToken(v string) []byte {
	h := sha256.Sum256([]byte(v))
	return h[:]
}
