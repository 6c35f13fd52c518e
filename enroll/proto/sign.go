package proto

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// The headers of a signed request.
const (
	// HeaderKey carries the key id: the Ed25519 public key, base64url
	// without padding (see KeyID).
	HeaderKey = "Totpbox-Key"
	// HeaderTimestamp carries the signing time in Unix seconds.
	HeaderTimestamp = "Totpbox-Timestamp"
	// HeaderNonce carries NonceSize random bytes, base64url without padding.
	HeaderNonce = "Totpbox-Nonce"
	// HeaderContentSHA256 carries the SHA-256 of the body in hex (of the
	// empty string when there is no body).
	HeaderContentSHA256 = "Totpbox-Content-Sha256"
	// HeaderSignature carries the Ed25519 signature of SigningString,
	// base64url without padding.
	HeaderSignature = "Totpbox-Signature"
)

// NonceSize is the number of random bytes in a nonce.
const NonceSize = 16

// Window is how far a request's timestamp may be from the server's clock,
// either way.
const Window = 5 * time.Minute

var b64 = base64.RawURLEncoding

// KeyID returns the key id of an Ed25519 public key, as sent in HeaderKey.
func KeyID(pub ed25519.PublicKey) string { return b64.EncodeToString(pub) }

// ParseKeyID decodes a key id into an Ed25519 public key.
func ParseKeyID(id string) (ed25519.PublicKey, error) {
	b, err := b64.DecodeString(id)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, errors.New("key id is not a base64url Ed25519 public key")
	}
	return ed25519.PublicKey(b), nil
}

// SigningString returns the bytes that are signed: a version line, then
// the method, the path with its query, the timestamp, the nonce and the
// body's hash, one per line.
func SigningString(method, pathQuery, timestamp, nonce, bodySHA256 string) []byte {
	var b bytes.Buffer
	b.WriteString("totpbox-appliance-request-v1\n")
	for _, s := range []string{method, pathQuery, timestamp, nonce, bodySHA256} {
		b.WriteString(s)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// requestTarget returns the path and query of r as the signature covers
// them.
func requestTarget(r *http.Request) string {
	p := r.URL.EscapedPath()
	if r.URL.RawQuery != "" {
		p += "?" + r.URL.RawQuery
	}
	return p
}

// BodyHash returns the hex SHA-256 of body.
func BodyHash(body []byte) string {
	h := sha256.Sum256(body)
	return hex.EncodeToString(h[:])
}

// Sign adds the signature headers to r, whose body is body (nil for
// none), signing with key at time now. The caller sets r's body itself.
func Sign(r *http.Request, body []byte, key ed25519.PrivateKey, now time.Time) {
	var nonce [NonceSize]byte
	rand.Read(nonce[:])
	ts := strconv.FormatInt(now.Unix(), 10)
	n := b64.EncodeToString(nonce[:])
	h := BodyHash(body)
	sig := ed25519.Sign(key, SigningString(r.Method, requestTarget(r), ts, n, h))
	r.Header.Set(HeaderKey, KeyID(key.Public().(ed25519.PublicKey)))
	r.Header.Set(HeaderTimestamp, ts)
	r.Header.Set(HeaderNonce, n)
	r.Header.Set(HeaderContentSHA256, h)
	r.Header.Set(HeaderSignature, b64.EncodeToString(sig))
}

// Errors of Verifier.Verify, for errors.Is.
var (
	ErrUnsigned        = errors.New("request is not signed")
	ErrBadSignature    = errors.New("request signature does not verify")
	ErrBodyHash        = errors.New("request body does not match its signed hash")
	ErrClockSkew       = errors.New("request timestamp is too far from the server's clock")
	ErrReplay          = errors.New("request nonce was already used")
	ErrReplayCacheFull = errors.New("too many signed requests in the replay window")
)

// DefaultReplayCacheSize bounds a Verifier's replay cache when
// MaxNonces is zero: about 100 bytes each.
const DefaultReplayCacheSize = 1 << 18

// Verifier checks signed requests and remembers their nonces for the
// timestamp window, so a request is accepted at most once. Its zero value
// is ready to use. It is safe for concurrent use.
//
// The replay cache lives in memory, one per process: it is the fast first
// line. The appliance API also records each nonce in its store for the
// window (store.UseNonce), so a request replayed to another replica or
// after a restart is refused too.
type Verifier struct {
	// MaxNonces bounds the replay cache; zero means
	// DefaultReplayCacheSize. When it is full of unexpired nonces, Verify
	// fails closed with ErrReplayCacheFull.
	MaxNonces int

	mu        sync.Mutex
	seen      map[nonceKey]time.Time // expiry
	lastSweep time.Time
}

type nonceKey struct {
	key   [ed25519.PublicKeySize]byte
	nonce [NonceSize]byte
}

// Verify checks the signature of r, whose body was read into body, at
// the server's time now, and returns the signing key. Errors wrap one of
// ErrUnsigned, ErrClockSkew, ErrBodyHash, ErrBadSignature, ErrReplay or
// ErrReplayCacheFull. It is Check followed by Remember.
func (v *Verifier) Verify(r *http.Request, body []byte, now time.Time) (ed25519.PublicKey, error) {
	pub, err := v.Check(r, body, now)
	if err != nil {
		return nil, err
	}
	if err := v.Remember(r, pub, now); err != nil {
		return nil, err
	}
	return pub, nil
}

// Check checks the signature of r, whose body was read into body, at
// the server's time now, and returns the signing key, without recording
// its nonce: a server looks the key up first and calls Remember only for
// keys it knows, so requests signed by unknown keys cannot fill the
// replay cache. Errors wrap one of ErrUnsigned, ErrClockSkew, ErrBodyHash
// or ErrBadSignature.
func (v *Verifier) Check(r *http.Request, body []byte, now time.Time) (ed25519.PublicKey, error) {
	keyID, ts, nonce := r.Header.Get(HeaderKey), r.Header.Get(HeaderTimestamp), r.Header.Get(HeaderNonce)
	hash, sigText := r.Header.Get(HeaderContentSHA256), r.Header.Get(HeaderSignature)
	if keyID == "" || ts == "" || nonce == "" || hash == "" || sigText == "" {
		return nil, ErrUnsigned
	}
	pub, err := ParseKeyID(keyID)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnsigned, err)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("%w: timestamp is not Unix seconds", ErrUnsigned)
	}
	if n, err := b64.DecodeString(nonce); err != nil || len(n) != NonceSize {
		return nil, fmt.Errorf("%w: nonce is not %d base64url bytes", ErrUnsigned, NonceSize)
	}
	sig, err := b64.DecodeString(sigText)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: signature is not base64url Ed25519", ErrUnsigned)
	}
	at := time.Unix(sec, 0)
	if d := now.Sub(at); d > Window || d < -Window {
		return nil, fmt.Errorf("%w: off by %v", ErrClockSkew, d.Round(time.Second))
	}
	if subtle.ConstantTimeCompare([]byte(BodyHash(body)), []byte(hash)) != 1 {
		return nil, ErrBodyHash
	}
	if !ed25519.Verify(pub, SigningString(r.Method, requestTarget(r), ts, nonce, hash), sig) {
		return nil, ErrBadSignature
	}
	return pub, nil
}

// Remember records the nonce of r, which Check accepted as signed by pub,
// until its timestamp leaves the window. Errors wrap ErrReplay when the
// nonce was already used with pub, ErrReplayCacheFull when the cache is
// full, or ErrUnsigned when r's headers were not checked.
func (v *Verifier) Remember(r *http.Request, pub ed25519.PublicKey, now time.Time) error {
	sec, err := strconv.ParseInt(r.Header.Get(HeaderTimestamp), 10, 64)
	if err != nil {
		return fmt.Errorf("%w: timestamp is not Unix seconds", ErrUnsigned)
	}
	n, err := b64.DecodeString(r.Header.Get(HeaderNonce))
	if err != nil || len(n) != NonceSize || len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: nonce is not %d base64url bytes", ErrUnsigned, NonceSize)
	}
	var k nonceKey
	copy(k.key[:], pub)
	copy(k.nonce[:], n)
	return v.remember(k, time.Unix(sec, 0).Add(Window), now)
}

// remember records k until expiry, or reports a replay.
func (v *Verifier) remember(k nonceKey, expiry, now time.Time) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.seen == nil {
		v.seen = make(map[nonceKey]time.Time)
	}
	if exp, ok := v.seen[k]; ok && !now.After(exp) {
		return ErrReplay
	}
	limit := v.MaxNonces
	if limit <= 0 {
		limit = DefaultReplayCacheSize
	}
	if len(v.seen) >= limit || now.Sub(v.lastSweep) >= time.Minute {
		v.sweep(now)
	}
	if len(v.seen) >= limit {
		return ErrReplayCacheFull
	}
	v.seen[k] = expiry
	return nil
}

// sweep forgets nonces whose timestamps have left the window: a request
// carrying them would be refused for its timestamp anyway.
func (v *Verifier) sweep(now time.Time) {
	for k, exp := range v.seen {
		if now.After(exp) {
			delete(v.seen, k)
		}
	}
	v.lastSweep = now
}

// Nonces returns how many nonces the replay cache holds.
func (v *Verifier) Nonces() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.seen)
}
