package store

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/totpbox/totpbox/internal/fsx"
)

// KeySize is the size of a master key: AES-256.
const KeySize = 32

// MasterKey is one AES-256 key of a Sealer with its id, which is stored
// beside every ciphertext it seals.
type MasterKey struct {
	ID  string
	Key []byte // KeySize bytes
}

// KeyID returns the id of a master key derived from the key itself: 16 hex
// digits of a SHA-256 hash. Ids derived this way need no bookkeeping and
// reveal nothing about the key.
func KeyID(key []byte) string {
	h := sha256.New()
	h.Write([]byte("totpbox master key id v1\x00"))
	h.Write(key)
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// Sealer encrypts secrets at rest with AES-256-GCM. New ciphertexts use the
// primary key; ciphertexts sealed by any of the other keys still open, so
// master keys can rotate: add a new primary, keep the old ones until every
// secret has been sealed again.
//
// A Sealer is safe for concurrent use. Its errors never include key
// material or plaintext.
type Sealer struct {
	primary string
	aeads   map[string]cipher.AEAD
	macKeys map[string][]byte
}

// NewSealer returns a Sealer that seals with primary and opens with primary
// and others. Keys must be KeySize bytes with distinct, non-empty ids.
func NewSealer(primary MasterKey, others ...MasterKey) (*Sealer, error) {
	s := &Sealer{primary: primary.ID, aeads: make(map[string]cipher.AEAD), macKeys: make(map[string][]byte)}
	for i, k := range append([]MasterKey{primary}, others...) {
		if k.ID == "" {
			return nil, fmt.Errorf("master key %d: empty key id", i+1)
		}
		if len(k.Key) != KeySize {
			return nil, fmt.Errorf("master key %q: %d bytes, want %d", k.ID, len(k.Key), KeySize)
		}
		if _, dup := s.aeads[k.ID]; dup {
			return nil, fmt.Errorf("master key %q: duplicate key id", k.ID)
		}
		block, err := aes.NewCipher(k.Key)
		if err != nil {
			return nil, fmt.Errorf("master key %q: %v", k.ID, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("master key %q: %v", k.ID, err)
		}
		s.aeads[k.ID] = aead
		m := hmac.New(sha256.New, k.Key)
		m.Write([]byte("totpbox mac key v1"))
		s.macKeys[k.ID] = m.Sum(nil)
	}
	return s, nil
}

// MAC returns a tag over msg for purpose under the primary key (a key of
// its own derived from it, never the sealing key itself): for values the
// server hands out and must recognise later, such as the console's device
// cookies. Every replica sharing the master keys makes and checks the
// same tags.
func (s *Sealer) MAC(purpose string, msg []byte) []byte {
	return macWith(s.macKeys[s.primary], purpose, msg)
}

// CheckMAC reports whether tag is MAC(purpose, msg) under any of the
// Sealer's keys, so tags made before a rotation still check.
func (s *Sealer) CheckMAC(purpose string, msg, tag []byte) bool {
	for _, k := range s.macKeys {
		if hmac.Equal(macWith(k, purpose, msg), tag) {
			return true
		}
	}
	return false
}

func macWith(key []byte, purpose string, msg []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(purpose))
	m.Write([]byte{0})
	m.Write(msg)
	return m.Sum(nil)
}

// PrimaryKeyID returns the id of the key that new ciphertexts are sealed
// with.
func (s *Sealer) PrimaryKeyID() string { return s.primary }

// ErrUnsealable: a ciphertext does not open — a wrong or unknown key, the
// wrong associated data, or a damaged ciphertext.
var ErrUnsealable = errors.New("sealed secret does not open")

// aad prefixes the caller's associated data with the key id, so a
// ciphertext's key id cannot be changed either.
func sealAAD(keyID string, aad []byte) []byte {
	b := make([]byte, 0, 32+len(keyID)+len(aad))
	b = append(b, "totpbox seal v1\x00"...)
	b = append(b, keyID...)
	b = append(b, 0)
	return append(b, aad...)
}

// Seal encrypts plaintext with the primary key, binding it to aad: Open
// succeeds only with the same aad. The ciphertext is the random 96-bit
// nonce followed by the GCM output.
func (s *Sealer) Seal(plaintext, aad []byte) (Sealed, error) {
	aead := s.aeads[s.primary]
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return Sealed{}, fmt.Errorf("seal secret: %v", err)
	}
	return Sealed{
		KeyID:      s.primary,
		Ciphertext: aead.Seal(nonce, nonce, plaintext, sealAAD(s.primary, aad)),
	}, nil
}

// Open decrypts a ciphertext made by Seal with the same aad. It returns an
// error wrapping ErrUnsealable when the key is unknown or the ciphertext or
// aad do not match.
func (s *Sealer) Open(sealed Sealed, aad []byte) ([]byte, error) {
	aead, ok := s.aeads[sealed.KeyID]
	if !ok {
		return nil, fmt.Errorf("%w: unknown master key id %q", ErrUnsealable, sealed.KeyID)
	}
	n := aead.NonceSize()
	if len(sealed.Ciphertext) < n+aead.Overhead() {
		return nil, fmt.Errorf("%w: ciphertext too short", ErrUnsealable)
	}
	pt, err := aead.Open(nil, sealed.Ciphertext[:n], sealed.Ciphertext[n:], sealAAD(sealed.KeyID, aad))
	if err != nil {
		return nil, fmt.Errorf("%w: authentication failed (wrong key, wrong device or damaged)", ErrUnsealable)
	}
	return pt, nil
}

// NeedsReseal reports whether sealed was made with a key other than the
// primary one, so a rotation can seal it again.
func (s *Sealer) NeedsReseal(sealed Sealed) bool { return sealed.KeyID != s.primary }

// SealDevice seals an MFA device's TOTP secret into d.Secret, bound to the
// device by d.SecretAAD. It sets d.UID with NewDeviceUID first when empty,
// so call it before CreateDevice; d.UserID must be set.
func (s *Sealer) SealDevice(d *Device, secret []byte) error {
	if d.UserID == 0 {
		return errors.New("seal device secret: device has no user id")
	}
	if d.UID == "" {
		d.UID = NewDeviceUID()
	}
	sealed, err := s.Seal(secret, d.SecretAAD())
	if err != nil {
		return err
	}
	d.Secret = sealed
	return nil
}

// OpenDevice returns the TOTP secret of an MFA device sealed by SealDevice.
func (s *Sealer) OpenDevice(d Device) ([]byte, error) {
	pt, err := s.Open(d.Secret, d.SecretAAD())
	if err != nil {
		return nil, fmt.Errorf("mfa device %d: %w", d.ID, err)
	}
	return pt, nil
}

// ParseKeys parses master keys: base64 (standard or URL alphabet, padded
// or not) of KeySize bytes each, separated by newlines, commas or spaces;
// lines starting with # are comments. The first key is the primary one.
// Key ids come from KeyID. Errors name the position of a bad key, never
// its text.
func ParseKeys(text string) ([]MasterKey, error) {
	var keys []MasterKey
	var fields []string
	for line := range strings.Lines(text) {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		fields = append(fields, strings.FieldsFunc(line, func(r rune) bool {
			return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r'
		})...)
	}
	for i, f := range fields {
		key, err := decodeKey(f)
		if err != nil {
			return nil, fmt.Errorf("master key %d: %v", i+1, err)
		}
		keys = append(keys, MasterKey{ID: KeyID(key), Key: key})
	}
	if len(keys) == 0 {
		return nil, errors.New("no master key")
	}
	return keys, nil
}

func decodeKey(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if len(b) != KeySize {
				return nil, fmt.Errorf("%d bytes, want %d", len(b), KeySize)
			}
			return b, nil
		}
	}
	return nil, errors.New("not base64")
}

// LoadSealer returns a Sealer with the master keys in envValue (the value
// of an environment variable, see ParseKeys) when it is not empty, else
// with those in keyFile. A missing keyFile is created, mode 0600, holding
// one new random key; an existing one must not be readable by group or
// others.
func LoadSealer(keyFile string, envValue string) (*Sealer, error) {
	var text string
	var where string
	switch {
	case strings.TrimSpace(envValue) != "":
		text, where = envValue, "master key variable"
	case keyFile != "":
		b, err := readOrCreateKeyFile(keyFile)
		if err != nil {
			return nil, err
		}
		text, where = string(b), "key file "+keyFile
	default:
		return nil, errors.New("no master key: neither a key file nor a key variable is set")
	}
	keys, err := ParseKeys(text)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", where, err)
	}
	s, err := NewSealer(keys[0], keys[1:]...)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", where, err)
	}
	return s, nil
}

// maxKeyFile bounds a key file: room for many rotated keys and comments.
const maxKeyFile = 64 << 10

func readOrCreateKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		// Another process may create it at the same time: both then read
		// the one that was linked first.
		if err := NewKeyFile(path); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		f, err = os.Open(path)
	}
	if err != nil {
		return nil, fmt.Errorf("key file: %v", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("key file: %v", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("key file %s: not a regular file", path)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("key file %s: mode %04o lets others read it; chmod 600 it", path, fi.Mode().Perm())
	}
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("key file: %v", err)
	}
	if len(b) > maxKeyFile {
		return nil, fmt.Errorf("key file %s: larger than %d bytes", path, maxKeyFile)
	}
	return b, nil
}

// NewKeyFile writes a new random master key to path, mode 0600. It
// writes a temporary file, syncs it and links it into place, so a crash
// never leaves a partial key file and it never replaces an existing one:
// when path exists the error wraps fs.ErrExist.
func NewKeyFile(path string) error {
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return fmt.Errorf("create key file: %v", err)
	}
	content := "# totpbox master key (AES-256, base64). To rotate, put a new key on the\n" +
		"# first line and keep the old ones below it.\n" +
		base64.StdEncoding.EncodeToString(key) + "\n"
	if err := fsx.WriteAtomic(path, []byte(content), fsx.Options{Create: true}); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("create key file %s: %w", path, fs.ErrExist)
		}
		return fmt.Errorf("create key file: %v", err)
	}
	return nil
}

// Holds reports whether s can open what was sealed with key id.
func (s *Sealer) Holds(id string) bool { _, ok := s.aeads[id]; return ok }

// SealedKeys lists the master key ids that sealed rows use; the SQLite and
// PostgreSQL stores implement it.
type SealedKeys interface {
	SealedKeyIDs(ctx context.Context) ([]string, error)
}

// LoadSealerFor is LoadSealer for a server starting on st, which may
// already hold sealed secrets: it never creates a key file when st holds
// sealed rows (a database restored without its key, or a mistyped key
// file name, must not get a new key and start), and it refuses, naming
// the first missing key id and where keys were looked for, when st holds
// rows sealed with a key the sealer does not have.
func LoadSealerFor(ctx context.Context, st SealedKeys, keyFile, envValue string) (*Sealer, error) {
	ids, err := st.SealedKeyIDs(ctx)
	if err != nil {
		return nil, fmt.Errorf("master key: list the key ids of sealed secrets: %v", err)
	}
	where := "key file " + keyFile
	if strings.TrimSpace(envValue) != "" {
		where = "the master key variable"
	} else if len(ids) > 0 && keyFile != "" {
		if _, err := os.Stat(keyFile); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("master key %s is missing: key file %s does not exist and the database holds secrets sealed with it; restore the key file or point master_key_file at it (a new key would open none of them)", ids[0], keyFile)
		}
	}
	s, err := LoadSealer(keyFile, envValue)
	if err != nil {
		return nil, err
	}
	if err := requireKeys(ids, s, where); err != nil {
		return nil, err
	}
	if err := claimKeys(ctx, st, s, where); err != nil {
		return nil, err
	}
	return s, nil
}

// KeyClaims binds a database to the master key it was first started with
// (the SQL stores implement it); SealedKeyIDs reports the bound id too.
type KeyClaims interface {
	// ClaimMasterKey binds the database to id unless it is bound already,
	// and returns the id it is bound to.
	ClaimMasterKey(ctx context.Context, id string) (string, error)
	// MoveMasterKeyClaim binds the database to to when it is bound to
	// from.
	MoveMasterKeyClaim(ctx context.Context, from, to string) error
}

// claimKeys binds st to s's primary key when it is bound to none, and
// refuses, naming the bound key and where, when s does not hold the key
// st is bound to: two replicas started against an empty database with
// keys of their own (one made by each) must not both run, each sealing
// what the other cannot open. A binding to a key s holds as an old one
// moves to s's primary (a rotation).
func claimKeys(ctx context.Context, st SealedKeys, s *Sealer, where string) error {
	c, ok := st.(KeyClaims)
	if !ok {
		return nil
	}
	got, err := c.ClaimMasterKey(ctx, s.primary)
	if err != nil {
		return fmt.Errorf("master key: %v", err)
	}
	switch {
	case got == s.primary:
		return nil
	case !s.Holds(got):
		return fmt.Errorf("master key %s is missing: the database belongs to it (another replica started on it first), and %s does not hold it; give every replica the same master key", got, where)
	}
	if err := c.MoveMasterKeyClaim(ctx, got, s.primary); err != nil {
		return fmt.Errorf("master key: %v", err)
	}
	return nil
}

// RequireKeys returns an error, one line naming the first missing key id
// and where (the keys' source, for the message), when st holds secrets
// sealed with a master key s does not hold.
func RequireKeys(ctx context.Context, st SealedKeys, s *Sealer, where string) error {
	ids, err := st.SealedKeyIDs(ctx)
	if err != nil {
		return fmt.Errorf("master key: list the key ids of sealed secrets: %v", err)
	}
	if err := requireKeys(ids, s, where); err != nil {
		return err
	}
	return claimKeys(ctx, st, s, where)
}

func requireKeys(ids []string, s *Sealer, where string) error {
	for _, id := range ids {
		if !s.Holds(id) {
			return fmt.Errorf("master key %s is missing: the database holds secrets sealed with it, and %s does not hold it", id, where)
		}
	}
	return nil
}
