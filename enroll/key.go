// Package enroll is the TOTP core of totpbox: otpauth:// keys, one-time codes
// (RFC 4226, RFC 6238) and verification that reports the matched time step.
package enroll

import (
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Algorithm is the HMAC hash function of a key.
type Algorithm int

// The algorithms of the Key Uri Format. SHA1 is the default.
const (
	SHA1 Algorithm = iota
	SHA256
	SHA512
)

// String returns the algorithm's name as written in otpauth URIs.
func (a Algorithm) String() string {
	switch a {
	case SHA1:
		return "SHA1"
	case SHA256:
		return "SHA256"
	case SHA512:
		return "SHA512"
	}
	return fmt.Sprintf("Algorithm(%d)", int(a))
}

// ParseAlgorithm parses an algorithm name, case-insensitively.
func ParseAlgorithm(s string) (Algorithm, error) {
	switch strings.ToUpper(s) {
	case "SHA1":
		return SHA1, nil
	case "SHA256":
		return SHA256, nil
	case "SHA512":
		return SHA512, nil
	}
	return 0, fmt.Errorf("unknown algorithm %q (want SHA1, SHA256 or SHA512)", s)
}

// Defaults of the Key Uri Format; Key.URI omits parameters equal to them.
const (
	DefaultDigits = 6
	DefaultPeriod = 30 * time.Second
	// MinSecretLen is the shortest secret accepted: 80 bits (RFC 4226 §4).
	MinSecretLen = 10
	// NewSecretLen is the length of secrets made by NewKey: 160 bits.
	NewSecretLen = 20
	// MinPeriod and MaxPeriod bound the time step.
	MinPeriod = 15 * time.Second
	MaxPeriod = 120 * time.Second
)

// Key is one TOTP credential: who issued it, for which account, and the
// shared secret with its parameters. The zero value is not valid; use
// NewKey or ParseURI.
type Key struct {
	Issuer    string
	Account   string
	Secret    []byte
	Algorithm Algorithm
	Digits    int
	Period    time.Duration
}

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewKey returns a key for issuer and account with a fresh random secret of
// NewSecretLen bytes and default parameters.
func NewKey(issuer, account string) (Key, error) {
	secret := make([]byte, NewSecretLen)
	if _, err := rand.Read(secret); err != nil {
		return Key{}, fmt.Errorf("new key: %w", err)
	}
	k := Key{Issuer: issuer, Account: account, Secret: secret, Algorithm: SHA1, Digits: DefaultDigits, Period: DefaultPeriod}
	return k, k.Validate()
}

// ParseSecret decodes a base32 secret the way people paste it: spaces,
// dashes and lower case are accepted and padding may be missing. It rejects
// secrets shorter than 80 bits.
func ParseSecret(s string) ([]byte, error) {
	clean := strings.Map(func(r rune) rune {
		switch {
		case r == ' ' || r == '-' || r == '\t' || r == '=':
			return -1
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		}
		return r
	}, s)
	if clean == "" {
		return nil, errors.New("missing secret")
	}
	secret, err := b32.DecodeString(clean)
	if err != nil {
		return nil, errors.New("secret is not valid base32 (letters A-Z and digits 2-7)")
	}
	if len(secret) < MinSecretLen {
		return nil, fmt.Errorf("secret is %d bits, under the minimum of 80", len(secret)*8)
	}
	return secret, nil
}

// SecretBase32 returns the secret in unpadded upper-case base32.
func (k Key) SecretBase32() string { return b32.EncodeToString(k.Secret) }

// Validate reports whether the key's parameters are usable, naming the
// first problem found.
func (k Key) Validate() error {
	switch {
	case len(k.Secret) == 0:
		return errors.New("missing secret")
	case len(k.Secret) < MinSecretLen:
		return fmt.Errorf("secret is %d bits, under the minimum of 80", len(k.Secret)*8)
	case k.Algorithm < SHA1 || k.Algorithm > SHA512:
		return fmt.Errorf("unknown algorithm %d", int(k.Algorithm))
	case k.Digits != 6 && k.Digits != 8:
		return fmt.Errorf("digits must be 6 or 8, not %d", k.Digits)
	case k.Period < MinPeriod || k.Period > MaxPeriod || k.Period%time.Second != 0:
		return fmt.Errorf("period must be whole seconds from 15 to 120, not %v", k.Period)
	case strings.Contains(k.Issuer, ":"):
		return errors.New("issuer must not contain a colon")
	}
	return nil
}

// ParseURI parses an otpauth://totp/ URI of the Key Uri Format. Errors are
// one line and name the problem; they never contain the secret.
func ParseURI(s string) (Key, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil {
		return Key{}, errors.New("otpauth URI: malformed URI")
	}
	if !strings.EqualFold(u.Scheme, "otpauth") {
		return Key{}, fmt.Errorf("otpauth URI: scheme is %q, want otpauth", u.Scheme)
	}
	switch strings.ToLower(u.Host) {
	case "totp":
	case "hotp":
		return Key{}, errors.New("otpauth URI: type hotp is not supported, only totp")
	default:
		return Key{}, fmt.Errorf("otpauth URI: unknown type %q, want totp", u.Host)
	}
	// Split the label on its first literal colon before unescaping, so an
	// escaped colon (%3A) stays inside the account name.
	rawLabel := strings.TrimPrefix(u.EscapedPath(), "/")
	var labelIssuer, account string
	if i := strings.Index(rawLabel, ":"); i >= 0 {
		if labelIssuer, err = url.PathUnescape(rawLabel[:i]); err == nil {
			account, err = url.PathUnescape(rawLabel[i+1:])
		}
	} else {
		account, err = url.PathUnescape(rawLabel)
	}
	if err != nil {
		return Key{}, errors.New("otpauth URI: malformed label")
	}
	labelIssuer, account = strings.TrimSpace(labelIssuer), strings.TrimSpace(account)
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return Key{}, errors.New("otpauth URI: malformed query")
	}
	k := Key{Issuer: labelIssuer, Account: account, Algorithm: SHA1, Digits: DefaultDigits, Period: DefaultPeriod}
	if q.Has("issuer") {
		issuer := strings.TrimSpace(q.Get("issuer"))
		if labelIssuer != "" && issuer != labelIssuer {
			return Key{}, fmt.Errorf("otpauth URI: issuer %q in label disagrees with issuer parameter %q", labelIssuer, issuer)
		}
		k.Issuer = issuer
	}
	if !q.Has("secret") {
		return Key{}, errors.New("otpauth URI: missing secret")
	}
	if k.Secret, err = ParseSecret(q.Get("secret")); err != nil {
		return Key{}, fmt.Errorf("otpauth URI: %w", err)
	}
	if v := q.Get("algorithm"); v != "" {
		if k.Algorithm, err = ParseAlgorithm(v); err != nil {
			return Key{}, fmt.Errorf("otpauth URI: %w", err)
		}
	}
	if v := q.Get("digits"); v != "" {
		d, err := strconv.Atoi(v)
		if err != nil || (d != 6 && d != 8) {
			return Key{}, fmt.Errorf("otpauth URI: digits must be 6 or 8, not %q", v)
		}
		k.Digits = d
	}
	if v := q.Get("period"); v != "" {
		p, err := strconv.Atoi(v)
		if err != nil || p < 15 || p > 120 {
			return Key{}, fmt.Errorf("otpauth URI: period must be 15 to 120 seconds, not %q", v)
		}
		k.Period = time.Duration(p) * time.Second
	}
	if err := k.Validate(); err != nil {
		return Key{}, fmt.Errorf("otpauth URI: %w", err)
	}
	return k, nil
}

// URI formats the key as an otpauth://totp/ URI. Parameters equal to their
// defaults are omitted so QR codes stay small.
func (k Key) URI() string {
	label := escapeLabel(k.Account)
	if k.Issuer != "" {
		label = escapeLabel(k.Issuer) + ":" + label
	}
	var b strings.Builder
	b.WriteString("otpauth://totp/")
	b.WriteString(label)
	b.WriteString("?secret=")
	b.WriteString(k.SecretBase32())
	if k.Issuer != "" {
		b.WriteString("&issuer=")
		// %20 rather than +: some authenticator apps show a + literally.
		b.WriteString(strings.ReplaceAll(url.QueryEscape(k.Issuer), "+", "%20"))
	}
	if k.Algorithm != SHA1 {
		b.WriteString("&algorithm=")
		b.WriteString(k.Algorithm.String())
	}
	if k.Digits != 0 && k.Digits != DefaultDigits {
		b.WriteString("&digits=")
		b.WriteString(strconv.Itoa(k.Digits))
	}
	if k.Period != 0 && k.Period != DefaultPeriod {
		b.WriteString("&period=")
		b.WriteString(strconv.Itoa(int(k.Period / time.Second)))
	}
	return b.String()
}

// String describes the key without its secret, so a Key may be logged.
func (k Key) String() string {
	return fmt.Sprintf("%s:%s (%v, %d digits, %v)", k.Issuer, k.Account, k.Algorithm, k.Digits, k.Period)
}

// escapeLabel escapes one half of a label, colons included, so the
// issuer/account split survives a round trip.
func escapeLabel(s string) string {
	return strings.ReplaceAll(url.PathEscape(s), ":", "%3A")
}
