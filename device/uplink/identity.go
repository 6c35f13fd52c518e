package uplink

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/totpbox/totpbox/device/tpm"
	"github.com/totpbox/totpbox/internal/fsx"
)

// IdentityFile is the name, in the state directory, of the file holding
// the appliance's private keys (0600).
const IdentityFile = "identity.json"

// identity is the appliance's Ed25519 signing key and X25519 box key.
type identity struct {
	sign    ed25519.PrivateKey
	boxPub  *[32]byte
	boxPriv *[32]byte
}

type identityJSON struct {
	SignSeed   []byte `json:"sign_seed,omitempty"`
	BoxPrivate []byte `json:"box_private,omitempty"`
	// TPMSealed, in TPM mode, holds the signing seed and the box key
	// (64 bytes) sealed to the appliance's TPM, instead of the two above.
	TPMSealed []byte `json:"tpm_sealed,omitempty"`
}

// Sealer seals the identity's private keys to the appliance's TPM
// (device/tpm.TPM). Unseal's error wraps ErrOtherTPM for a blob another
// TPM made.
type Sealer interface {
	Seal(data []byte) ([]byte, error)
	Unseal(blob []byte) ([]byte, error)
}

// loadIdentity reads the identity in dir, creating it on first start.
// With a sealer the keys are kept sealed to the TPM; an identity file of
// plain keys found then is sealed in place.
func loadIdentity(dir string, sealer Sealer) (*identity, error) {
	path := filepath.Join(dir, IdentityFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return createIdentity(path, sealer)
	}
	if err != nil {
		return nil, fmt.Errorf("read identity: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	defer clear(b)
	var j identityJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, fmt.Errorf("identity file %s is damaged: not valid JSON", path)
	}
	if j.TPMSealed != nil {
		if sealer == nil {
			return nil, fmt.Errorf("identity file %s is sealed to a TPM, but no TPM is in use (secrets: software); set secrets to auto or tpm", path)
		}
		keys, err := sealer.Unseal(j.TPMSealed)
		if errors.Is(err, ErrOtherTPM) {
			return nil, fmt.Errorf("identity file %s is sealed to a different TPM: this is a copy from another board; pair this appliance again, or put the SD card back in the original board", path)
		}
		if err != nil {
			return nil, fmt.Errorf("identity file %s: %w", path, err)
		}
		defer clear(keys)
		if len(keys) != ed25519.SeedSize+32 {
			return nil, fmt.Errorf("identity file %s is damaged: sealed keys have the wrong size", path)
		}
		return newIdentity(keys[:ed25519.SeedSize], keys[ed25519.SeedSize:])
	}
	defer clear(j.SignSeed)
	defer clear(j.BoxPrivate)
	if len(j.SignSeed) != ed25519.SeedSize || len(j.BoxPrivate) != 32 {
		return nil, fmt.Errorf("identity file %s is damaged: keys have the wrong size", path)
	}
	if sealer != nil {
		// Moving to TPM mode: seal the keys in place.
		if err := writeIdentity(path, j.SignSeed, j.BoxPrivate, sealer); err != nil {
			return nil, fmt.Errorf("sealing identity: %w", err)
		}
	}
	return newIdentity(j.SignSeed, j.BoxPrivate)
}

// ErrOtherTPM is what a Sealer's Unseal wraps for a blob made by another
// TPM; it is device/tpm's error.
var ErrOtherTPM = tpm.ErrOtherTPM

func newIdentity(seed, boxPriv []byte) (*identity, error) {
	k, err := ecdh.X25519().NewPrivateKey(boxPriv)
	if err != nil {
		return nil, fmt.Errorf("identity: box key: %w", err)
	}
	id := &identity{sign: ed25519.NewKeyFromSeed(seed), boxPub: new([32]byte), boxPriv: new([32]byte)}
	copy(id.boxPub[:], k.PublicKey().Bytes())
	copy(id.boxPriv[:], boxPriv)
	return id, nil
}

func createIdentity(path string, sealer Sealer) (*identity, error) {
	seed := make([]byte, ed25519.SeedSize)
	box := make([]byte, 32)
	rand.Read(seed)
	rand.Read(box)
	defer clear(seed)
	defer clear(box)
	if err := writeIdentity(path, seed, box, sealer); err != nil {
		return nil, fmt.Errorf("create identity: %w", err)
	}
	return newIdentity(seed, box)
}

// writeIdentity writes the identity file: the keys sealed by sealer, or
// plain without one.
func writeIdentity(path string, seed, box []byte, sealer Sealer) error {
	j := identityJSON{SignSeed: seed, BoxPrivate: box}
	if sealer != nil {
		keys := append(append(make([]byte, 0, len(seed)+len(box)), seed...), box...)
		blob, err := sealer.Seal(keys)
		clear(keys)
		if err != nil {
			return err
		}
		j = identityJSON{TPMSealed: blob}
	}
	b, err := json.Marshal(j)
	if err != nil {
		return err
	}
	defer clear(b)
	return writeFileAtomic(path, b)
}

// signPub returns the Ed25519 public key.
func (id *identity) signPub() ed25519.PublicKey { return id.sign.Public().(ed25519.PublicKey) }

// writeFileAtomic writes b to path (0600) durably (fsx.WriteAtomic).
func writeFileAtomic(path string, b []byte) error {
	return fsx.WriteAtomic(path, b, fsx.Options{})
}

// SealIdentity seals the identity file in dir to the TPM in place, for a
// move to TPM mode; without an identity file it does nothing.
func SealIdentity(dir string, s Sealer) error {
	if _, err := os.Stat(filepath.Join(dir, IdentityFile)); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	_, err := loadIdentity(dir, s)
	return err
}
