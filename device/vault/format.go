package vault

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	"github.com/totpbox/totpbox/enroll"
)

// The vault file is a fixed header followed by AES-256-GCM ciphertext of
// the accounts as JSON. The whole header is the GCM additional data, so
// changing any byte of the file fails authentication.
//
//	offset size
//	0      8    magic "TOTPBOXV"
//	8      2    format version, big endian
//	10     8    key id: first 8 bytes of HMAC-SHA256(data key, "totpbox vault key id")
//	18     12   GCM nonce, random per write
//	30     ...  ciphertext and 16-byte tag
const (
	magic         = "TOTPBOXV"
	formatVersion = 1
	keyIDSize     = 8
	nonceSize     = 12
	headerSize    = len(magic) + 2 + keyIDSize + nonceSize
	tagSize       = 16
)

// FormatVersion is the vault file format version this package writes.
const FormatVersion = formatVersion

func keyID(key []byte) [keyIDSize]byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("totpbox vault key id"))
	var id [keyIDSize]byte
	copy(id[:], m.Sum(nil))
	return id
}

type fileData struct {
	Accounts []accountJSON `json:"accounts"`
}

type accountJSON struct {
	ID      string    `json:"id"`
	Issuer  string    `json:"issuer,omitempty"`
	Label   string    `json:"label,omitempty"`
	Key     keyJSON   `json:"key"`
	State   State     `json:"state"`
	Source  string    `json:"source"`
	User    string    `json:"user,omitempty"`
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
	// TPM is the TPM's wrapped keyed-hash object holding the secret,
	// when the account is held in the TPM (Key.Secret is then empty).
	TPM []byte `json:"tpm,omitempty"`
}

type keyJSON struct {
	Issuer    string `json:"issuer,omitempty"`
	Account   string `json:"account,omitempty"`
	Secret    []byte `json:"secret,omitempty"`
	Algorithm string `json:"algorithm"`
	Digits    int    `json:"digits"`
	Period    int64  `json:"period"`
}

// seal encodes accounts into the bytes of a vault file.
func (v *Vault) seal(accounts []Account) ([]byte, error) {
	d := fileData{Accounts: make([]accountJSON, len(accounts))}
	for i, a := range accounts {
		d.Accounts[i] = accountJSON{
			ID: a.ID, Issuer: a.Issuer, Label: a.Label, State: a.State, Source: a.Source, User: a.User,
			Created: a.Created, Updated: a.Updated, TPM: a.tpmBlob,
			Key: keyJSON{
				Issuer: a.Key.Issuer, Account: a.Key.Account, Secret: a.Key.Secret,
				Algorithm: a.Key.Algorithm.String(), Digits: a.Key.Digits,
				Period: int64(a.Key.Period / time.Second),
			},
		}
	}
	plain, err := json.Marshal(d)
	if err != nil {
		return nil, fmt.Errorf("encode vault: %w", err)
	}
	defer clear(plain)
	out := make([]byte, headerSize, headerSize+len(plain)+tagSize)
	copy(out, magic)
	binary.BigEndian.PutUint16(out[len(magic):], formatVersion)
	copy(out[len(magic)+2:], v.keyID[:])
	nonce := out[headerSize-nonceSize : headerSize]
	rand.Read(nonce)
	return v.aead.Seal(out, nonce, plain, out[:headerSize]), nil
}

// errCorrupt returns the error for a vault file that cannot be read.
func errCorrupt(path, detail string) error {
	return fmt.Errorf("open vault %s: %w: %s; the file is left as it is", path, ErrCorrupt, detail)
}

// unseal decodes the bytes of the vault file at path.
func (v *Vault) unseal(path string, b []byte) ([]Account, error) {
	if len(b) < len(magic) || !bytes.Equal(b[:len(magic)], []byte(magic)) {
		if len(b) == 0 {
			return nil, errCorrupt(path, "the file is empty")
		}
		if len(b) < len(magic) && bytes.HasPrefix([]byte(magic), b) {
			return nil, errCorrupt(path, fmt.Sprintf("truncated to %d bytes", len(b)))
		}
		return nil, errCorrupt(path, "not a totpbox vault file")
	}
	if len(b) < headerSize+tagSize {
		return nil, errCorrupt(path, fmt.Sprintf("truncated to %d bytes", len(b)))
	}
	if ver := binary.BigEndian.Uint16(b[len(magic):]); ver != formatVersion {
		if ver > formatVersion {
			return nil, fmt.Errorf("open vault %s: %w: format version %d, this build reads version %d", path, ErrUnsupportedVersion, ver, formatVersion)
		}
		return nil, errCorrupt(path, fmt.Sprintf("unknown format version %d", ver))
	}
	if !hmac.Equal(b[len(magic)+2:len(magic)+2+keyIDSize], v.keyID[:]) {
		return nil, fmt.Errorf("open vault %s: %w (key file %s)", path, ErrWrongKey, v.keyPath)
	}
	header := b[:headerSize]
	plain, err := v.aead.Open(nil, header[headerSize-nonceSize:], b[headerSize:], header)
	if err != nil {
		return nil, errCorrupt(path, "authentication failed (damaged or truncated)")
	}
	defer clear(plain)
	var d fileData
	dec := json.NewDecoder(bytes.NewReader(plain))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return nil, errCorrupt(path, "accounts do not decode")
	}
	accounts := make([]Account, len(d.Accounts))
	seen := make(map[string]bool, len(d.Accounts))
	for i, r := range d.Accounts {
		alg, err := enroll.ParseAlgorithm(r.Key.Algorithm)
		if err != nil {
			return nil, errCorrupt(path, fmt.Sprintf("account %d: %v", i, err))
		}
		a := Account{
			ID: r.ID, Issuer: r.Issuer, Label: r.Label, State: r.State, Source: r.Source, User: r.User,
			Created: r.Created, Updated: r.Updated, InTPM: r.TPM != nil, tpmBlob: r.TPM,
			Key: enroll.Key{
				Issuer: r.Key.Issuer, Account: r.Key.Account, Secret: r.Key.Secret,
				Algorithm: alg, Digits: r.Key.Digits, Period: time.Duration(r.Key.Period) * time.Second,
			},
		}
		if a.ID == "" || seen[a.ID] {
			return nil, errCorrupt(path, fmt.Sprintf("account %d: missing or repeated id", i))
		}
		seen[a.ID] = true
		if err := a.validate(); err != nil {
			return nil, errCorrupt(path, fmt.Sprintf("account %s: %v", a.ID, err))
		}
		accounts[i] = a
	}
	return accounts, nil
}
