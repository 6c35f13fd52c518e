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
	SignSeed   []byte `json:"sign_seed"`
	BoxPrivate []byte `json:"box_private"`
}

// loadIdentity reads the identity in dir, creating it on first start.
func loadIdentity(dir string) (*identity, error) {
	path := filepath.Join(dir, IdentityFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return createIdentity(path)
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
	defer clear(j.SignSeed)
	defer clear(j.BoxPrivate)
	if len(j.SignSeed) != ed25519.SeedSize || len(j.BoxPrivate) != 32 {
		return nil, fmt.Errorf("identity file %s is damaged: keys have the wrong size", path)
	}
	return newIdentity(j.SignSeed, j.BoxPrivate)
}

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

func createIdentity(path string) (*identity, error) {
	seed := make([]byte, ed25519.SeedSize)
	box := make([]byte, 32)
	rand.Read(seed)
	rand.Read(box)
	defer clear(seed)
	defer clear(box)
	b, err := json.Marshal(identityJSON{SignSeed: seed, BoxPrivate: box})
	if err != nil {
		return nil, err
	}
	defer clear(b)
	if err := writeFileAtomic(path, b); err != nil {
		return nil, fmt.Errorf("create identity: %w", err)
	}
	return newIdentity(seed, box)
}

// signPub returns the Ed25519 public key.
func (id *identity) signPub() ed25519.PublicKey { return id.sign.Public().(ed25519.PublicKey) }

// writeFileAtomic writes b to path (0600) durably: a temporary file in the
// same directory, fsync, rename, fsync of the directory.
func writeFileAtomic(path string, b []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	ok = true
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
