package vault

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"golang.org/x/crypto/argon2"

	"github.com/totpbox/totpbox/device/tpm"
)

// KeySize is the length of the vault's data key: AES-256.
const KeySize = 32

// KDFParams are the argon2id parameters that turn a passphrase into the key
// that wraps the data key. They are stored in the key file, so they matter
// only when a key file is created.
type KDFParams struct {
	// Time is the number of passes over memory.
	Time uint32
	// MemoryKiB is the memory used, in KiB.
	MemoryKiB uint32
	// Threads is the degree of parallelism.
	Threads uint8
}

// DefaultKDF is the second recommended argon2id setting of RFC 9106 §4
// (t=3, 64 MiB, p=4): about a second on a Raspberry Pi Zero 2.
var DefaultKDF = KDFParams{Time: 3, MemoryKiB: 64 * 1024, Threads: 4}

func (p KDFParams) validate() error {
	if p.Time < 1 || p.Threads < 1 || p.MemoryKiB < 8*uint32(p.Threads) || p.MemoryKiB > 4<<20 || p.Time > 100 {
		return fmt.Errorf("argon2id parameters out of range (time %d, memory %d KiB, threads %d)", p.Time, p.MemoryKiB, p.Threads)
	}
	return nil
}

const (
	keyFileFormat  = "totpbox-vault-key"
	keyFileVersion = 1
	kdfArgon2id    = "argon2id"
	saltSize       = 16
)

// keyFile is the JSON layout of a key file. Exactly one of Key (a plain
// data key), Wrapped (the data key sealed with a passphrase-derived key)
// and TPMSealed (the data key sealed to the appliance's TPM) is set.
type keyFile struct {
	Format    string   `json:"format"`
	Version   int      `json:"version"`
	Key       []byte   `json:"key,omitempty"`
	KDF       *kdfJSON `json:"kdf,omitempty"`
	Nonce     []byte   `json:"nonce,omitempty"`
	Wrapped   []byte   `json:"wrapped_key,omitempty"`
	TPMSealed []byte   `json:"tpm_sealed_key,omitempty"`
}

type kdfJSON struct {
	Name      string `json:"name"`
	Time      uint32 `json:"time"`
	MemoryKiB uint32 `json:"memory_kib"`
	Threads   uint8  `json:"threads"`
	Salt      []byte `json:"salt"`
}

// wrapAAD binds the wrapped key to the format, version and KDF parameters.
func (k *keyFile) wrapAAD() []byte {
	return fmt.Appendf(nil, "%s v%d %s t=%d m=%d p=%d salt=%x",
		k.Format, k.Version, k.KDF.Name, k.KDF.Time, k.KDF.MemoryKiB, k.KDF.Threads, k.KDF.Salt)
}

func deriveKEK(pass []byte, k *kdfJSON) []byte {
	return argon2.IDKey(pass, k.Salt, k.Time, k.MemoryKiB, k.Threads, KeySize)
}

func newGCM(key []byte) cipher.AEAD {
	block, err := aes.NewCipher(key)
	if err != nil {
		panic("vault: " + err.Error()) // key length is always KeySize
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic("vault: " + err.Error())
	}
	return aead
}

// passphrase returns the passphrase chosen by o, or nil for none.
func (o *Config) passphrase() ([]byte, error) {
	n := 0
	for _, set := range []bool{o.Passphrase != nil, o.PassphraseFile != "", o.PassphraseEnv != ""} {
		if set {
			n++
		}
	}
	if n > 1 {
		return nil, errors.New("vault options: give at most one of Passphrase, PassphraseFile and PassphraseEnv")
	}
	var p []byte
	switch {
	case o.Passphrase != nil:
		p = append([]byte(nil), o.Passphrase...)
		if len(p) == 0 {
			return nil, errors.New("vault passphrase is empty")
		}
	case o.PassphraseFile != "":
		b, err := os.ReadFile(o.PassphraseFile)
		if err != nil {
			return nil, fmt.Errorf("vault passphrase file: %w", err)
		}
		s := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
		if s == "" {
			return nil, fmt.Errorf("vault passphrase file %s is empty", o.PassphraseFile)
		}
		p = []byte(s)
	case o.PassphraseEnv != "":
		v, ok := os.LookupEnv(o.PassphraseEnv)
		if !ok {
			return nil, fmt.Errorf("vault passphrase variable %s is not set", o.PassphraseEnv)
		}
		if v == "" {
			return nil, fmt.Errorf("vault passphrase variable %s is empty", o.PassphraseEnv)
		}
		p = []byte(v)
	}
	return p, nil
}

// readKeyFile reads and checks the key file at path.
func readKeyFile(path string) (*keyFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("vault key file: %w", err)
	}
	defer clear(b)
	var kf keyFile
	if err := json.Unmarshal(b, &kf); err != nil || kf.Format != keyFileFormat {
		return nil, fmt.Errorf("vault key file %s: %w", path, ErrCorruptKey)
	}
	if kf.Version != keyFileVersion {
		return nil, fmt.Errorf("vault key file %s has format version %d; this build reads version %d", path, kf.Version, keyFileVersion)
	}
	return &kf, nil
}

// KeyKind says how a vault's data key is protected.
type KeyKind string

// The kinds of key file.
const (
	// KeyNone: there is no key file yet.
	KeyNone KeyKind = "none"
	// KeySoftware: the key file holds the data key itself.
	KeySoftware KeyKind = "software"
	// KeyPassphrase: the data key is wrapped by a passphrase.
	KeyPassphrase KeyKind = "passphrase"
	// KeyTPM: the data key is sealed to the appliance's TPM.
	KeyTPM KeyKind = "tpm"
)

// KeyFileKind reports how the key file at path protects the data key,
// or KeyNone when there is no such file.
func KeyFileKind(path string) (KeyKind, error) {
	if ok, err := exists(path); err != nil {
		return "", err
	} else if !ok {
		return KeyNone, nil
	}
	kf, err := readKeyFile(path)
	if err != nil {
		return "", err
	}
	clear(kf.Key)
	switch {
	case kf.TPMSealed != nil:
		return KeyTPM, nil
	case kf.KDF != nil:
		return KeyPassphrase, nil
	}
	return KeySoftware, nil
}

// loadKey reads the data key from path, unwrapping it with pass when the
// file is passphrase-protected, or unsealing it with t when it is sealed
// to a TPM.
func loadKey(path string, pass []byte, t TPM) ([]byte, error) {
	kf, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	switch {
	case kf.TPMSealed != nil:
		if t == nil {
			return nil, fmt.Errorf("vault key file %s: %w", path, ErrTPMRequired)
		}
		if pass != nil {
			return nil, fmt.Errorf("vault key file %s is sealed to the TPM, but a passphrase was given", path)
		}
		key, err := t.Unseal(kf.TPMSealed)
		if errors.Is(err, tpm.ErrOtherTPM) {
			return nil, fmt.Errorf("%w (key file %s): this is a copy from another board; pair this appliance again and re-register its accounts, or put the SD card back in the original board", ErrOtherTPM, path)
		}
		if err != nil {
			return nil, fmt.Errorf("vault key file %s: %w", path, err)
		}
		return key, nil
	case t != nil:
		clear(kf.Key)
		return nil, fmt.Errorf("vault key file %s: %w", path, ErrSoftwareKey)
	case kf.KDF == nil:
		if len(kf.Key) != KeySize {
			return nil, fmt.Errorf("vault key file %s: %w", path, ErrCorruptKey)
		}
		if pass != nil {
			return nil, fmt.Errorf("vault key file %s is not protected by a passphrase, but a passphrase was given", path)
		}
		return kf.Key, nil
	case kf.KDF.Name != kdfArgon2id:
		return nil, fmt.Errorf("vault key file %s uses unknown key derivation %q", path, kf.KDF.Name)
	}
	p := KDFParams{Time: kf.KDF.Time, MemoryKiB: kf.KDF.MemoryKiB, Threads: kf.KDF.Threads}
	if err := p.validate(); err != nil || len(kf.KDF.Salt) < saltSize || len(kf.Wrapped) != KeySize+16 {
		return nil, fmt.Errorf("vault key file %s: %w", path, ErrCorruptKey)
	}
	if pass == nil {
		return nil, fmt.Errorf("vault key file %s: %w", path, ErrPassphraseRequired)
	}
	aead := newGCM(deriveKEK(pass, kf.KDF))
	if len(kf.Nonce) != aead.NonceSize() {
		return nil, fmt.Errorf("vault key file %s: %w", path, ErrCorruptKey)
	}
	key, err := aead.Open(nil, kf.Nonce, kf.Wrapped, kf.wrapAAD())
	if err != nil {
		return nil, fmt.Errorf("vault key file %s: %w", path, ErrWrongPassphrase)
	}
	return key, nil
}

// marshalKeyFile returns the key file contents for key: sealed to t when
// t is not nil, else wrapped with a key derived from pass when pass is
// not nil, else plain.
func marshalKeyFile(key, pass []byte, p KDFParams, t TPM) ([]byte, error) {
	kf := keyFile{Format: keyFileFormat, Version: keyFileVersion}
	if t != nil {
		if pass != nil {
			return nil, errors.New("vault options: a key sealed to the TPM takes no passphrase")
		}
		blob, err := t.Seal(key)
		if err != nil {
			return nil, fmt.Errorf("vault key file: %w", err)
		}
		kf.TPMSealed = blob
	} else if pass == nil {
		kf.Key = key
	} else {
		if err := p.validate(); err != nil {
			return nil, fmt.Errorf("vault options: %w", err)
		}
		salt := make([]byte, saltSize)
		rand.Read(salt)
		kf.KDF = &kdfJSON{Name: kdfArgon2id, Time: p.Time, MemoryKiB: p.MemoryKiB, Threads: p.Threads, Salt: salt}
		aead := newGCM(deriveKEK(pass, kf.KDF))
		kf.Nonce = make([]byte, aead.NonceSize())
		rand.Read(kf.Nonce)
		kf.Wrapped = aead.Seal(nil, kf.Nonce, key, kf.wrapAAD())
	}
	b, err := json.MarshalIndent(kf, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("vault key file: %w", err)
	}
	return append(b, '\n'), nil
}

// createKey makes a new random data key and writes it to path, failing if
// path already exists.
func createKey(path string, pass []byte, p KDFParams, t TPM) ([]byte, error) {
	key := make([]byte, KeySize)
	rand.Read(key)
	b, err := marshalKeyFile(key, pass, p, t)
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(path, b, false); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("vault key file %s appeared while it was being created", path)
		}
		return nil, fmt.Errorf("vault key file: %w", err)
	}
	return key, nil
}
