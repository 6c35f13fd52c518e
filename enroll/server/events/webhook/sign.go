// Package webhook delivers webhook events from the store's outbox to the
// endpoints that subscribe to them, signed the Standard Webhooks way
// (webhook-id, webhook-timestamp, webhook-signature: v1,<base64
// HMAC-SHA256 of id.timestamp.body>, secret whsec_<base64 key>). Each
// delivery is leased to one replica at a time; a failed one is retried
// with exponential backoff for 24 hours, then kept as a dead letter.
package webhook

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/totpbox/totpbox/enroll/store"
)

// SecretPrefix starts every signing secret.
const SecretPrefix = "whsec_"

// NewSecret returns a new signing secret: whsec_ and 32 random bytes in
// base64.
func NewSecret() string {
	var b [32]byte
	rand.Read(b[:])
	return SecretPrefix + base64.StdEncoding.EncodeToString(b[:])
}

// Key is the HMAC key of a secret: the base64 after whsec_.
func Key(secret string) ([]byte, error) {
	k, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, SecretPrefix))
	if err != nil || len(k) == 0 {
		return nil, errors.New("webhook secret is not whsec_ and base64")
	}
	return k, nil
}

// Sign returns the webhook-signature header of a delivery: "v1," and the
// base64 HMAC-SHA256, under key, of id.timestamp.body.
func Sign(key []byte, id string, ts time.Time, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write([]byte(strconv.FormatInt(ts.Unix(), 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// Sealer seals signing secrets at rest under the master key;
// *store.Sealer implements it.
type Sealer interface {
	Seal(plaintext, aad []byte) (store.Sealed, error)
	Open(sealed store.Sealed, aad []byte) ([]byte, error)
}

// SecretAAD binds a sealed secret to its endpoint.
func SecretAAD(endpointID string) []byte {
	return []byte("totpbox webhook secret v1\x00" + endpointID)
}
