package vault

import (
	"cmp"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/totpbox/totpbox/device/tpm"
	"github.com/totpbox/totpbox/enroll"
)

// TPM is what the vault asks of the appliance's TPM 2.0; device/tpm.TPM
// implements it. Blobs are opaque and only the TPM that made them opens
// them.
type TPM interface {
	// Seal seals data to the TPM; Unseal gives it back.
	Seal(data []byte) ([]byte, error)
	Unseal(blob []byte) ([]byte, error)
	// ImportHMAC makes a keyed-hash object holding secret; HMAC computes
	// with it inside the TPM.
	ImportHMAC(h tpm.Hash, secret []byte) ([]byte, error)
	HMAC(blob, msg []byte) ([]byte, error)
}

// Errors of the TPM mode, for errors.Is.
var (
	// ErrOtherTPM: the key file was sealed by another TPM: the state
	// directory was copied from another board.
	ErrOtherTPM = errors.New("the vault is sealed to a different TPM")
	// ErrTPMRequired: the key file is sealed to a TPM but the vault was
	// opened without one.
	ErrTPMRequired = errors.New("the vault key is sealed to a TPM, but no TPM is in use (secrets: software); set secrets to auto or tpm")
	// ErrSoftwareKey: the vault was opened with a TPM but its key file
	// is a software key, which MigrateToTPM moves into the TPM.
	ErrSoftwareKey = errors.New("the vault key is a software key file; run `totpctl secrets migrate` to seal it to the TPM")
)

// tpmHash returns the TPM hash for alg, if an SLB9670 computes it.
func tpmHash(alg enroll.Algorithm) (tpm.Hash, bool) {
	switch alg {
	case enroll.SHA1:
		return tpm.SHA1, true
	case enroll.SHA256:
		return tpm.SHA256, true
	}
	return 0, false
}

// movable reports whether a belongs in the TPM and is not there yet: an
// active account with a SHA-1 or SHA-256 key the TPM can hold.
func movable(a Account) bool {
	_, ok := tpmHash(a.Key.Algorithm)
	return ok && a.State == Active && !a.InTPM && len(a.Key.Secret) > 0 && len(a.Key.Secret) <= tpm.MaxHMACKey
}

// intoTPM returns next with every movable account's secret imported into
// the TPM, and the secrets it replaced, for the caller to clear once the
// new state is durable. next itself is not changed.
func (v *Vault) intoTPM(next []Account) ([]Account, [][]byte, error) {
	if v.tpm == nil {
		return next, nil, nil
	}
	var old [][]byte
	out := next
	for i, a := range next {
		if !movable(a) {
			continue
		}
		h, _ := tpmHash(a.Key.Algorithm)
		blob, err := v.tpm.ImportHMAC(h, a.Key.Secret)
		if err != nil {
			return nil, nil, fmt.Errorf("move account %s into the TPM: %w", a.ID, err)
		}
		if old == nil {
			out = slices.Clone(next)
		}
		old = append(old, a.Key.Secret)
		a.Key.Secret = nil
		a.InTPM, a.tpmBlob = true, blob
		out[i] = a
	}
	return out, old, nil
}

// codes computes the codes of accounts held in the TPM, remembering the
// newest ones so that a frame a second costs no TPM command. It keeps
// keptSteps codes per account and codes for at most maxCodeAccounts
// accounts: a code whose step has passed is never shown again, so an
// appliance that runs for weeks holds as many codes as on its first
// minute.
type codes struct {
	tpm TPM

	mu    sync.Mutex
	cache map[string][]stepCode // by key blob, newest step last
}

// stepCode is one account's code for one time step.
type stepCode struct {
	step   int64
	digits int
	code   string
}

// keptSteps is how many time steps' codes codes keeps per account: the
// screen shows the current and the next code, and one more spares a TPM
// command if the clock goes back a step.
const keptSteps = 3

// maxCodeAccounts bounds the accounts codes remembers codes of; past it
// (accounts removed and added) it starts afresh.
const maxCodeAccounts = 256

func (c *codes) code(blob []byte, digits int, step int64) (string, error) {
	c.mu.Lock()
	for _, sc := range c.cache[string(blob)] {
		if sc.step == step && sc.digits == digits {
			c.mu.Unlock()
			return sc.code, nil
		}
	}
	c.mu.Unlock()
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], uint64(step))
	sum, err := c.tpm.HMAC(blob, msg[:])
	if err != nil {
		return "", err
	}
	s := enroll.Truncate(sum, digits)
	c.mu.Lock()
	defer c.mu.Unlock()
	kept, ok := c.cache[string(blob)]
	if !ok && len(c.cache) >= maxCodeAccounts || c.cache == nil {
		c.cache = make(map[string][]stepCode)
	}
	kept = append(kept, stepCode{step, digits, s})
	slices.SortStableFunc(kept, func(a, b stepCode) int { return cmp.Compare(a.step, b.step) })
	if n := len(kept); n > keptSteps {
		kept = slices.Delete(kept, 0, n-keptSteps)
	}
	c.cache[string(blob)] = kept
	return s, nil
}

// CodeAt returns the account's code for time step step: computed by the
// TPM for an account held there, else from the key.
func (a Account) CodeAt(step int64) (string, error) {
	if !a.InTPM {
		return enroll.CodeAt(a.Key, step), nil
	}
	if a.codes == nil || len(a.tpmBlob) == 0 {
		return "", fmt.Errorf("account %s: held in the TPM, but the vault has no TPM", a.ID)
	}
	return a.codes.code(a.tpmBlob, a.Key.Digits, step)
}

// TPMMode reports whether the vault's key is sealed to the TPM.
func (v *Vault) TPMMode() bool { return v.tpm != nil }

// MigrateToTPM moves a software-mode vault to the TPM: a new data key
// sealed to t replaces the key file, the vault is rewritten under it, and
// every active SHA-1 and SHA-256 account's secret moves into the TPM.
// The old data key opens no vault file written from now on. It is safe
// against a crash at any point: the new key file is written beside the
// old one first (MigrationPending then reports it), Open with the TPM
// finishes the migration from wherever it stopped, and the old key file
// is replaced with one rename before its contents are cleared, so the
// key file always holds a whole key. The vault must have been opened
// without a TPM and without a passphrase.
func (v *Vault) MigrateToTPM(t TPM) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.lock == nil {
		return ErrClosed
	}
	if v.tpm != nil {
		return errors.New("secrets migrate: the vault is already sealed to the TPM")
	}
	if kind, err := KeyFileKind(v.keyPath); err != nil {
		return fmt.Errorf("secrets migrate: %w", err)
	} else if kind != KeySoftware {
		return fmt.Errorf("secrets migrate: the vault key file is %s, not a software key file", kind)
	}
	newPath := v.keyPath + pendingKeySuffix
	if err := removeStaleTemps(newPath); err != nil {
		return fmt.Errorf("secrets migrate: %w", err)
	}
	key := make([]byte, KeySize)
	defer clear(key)
	rand.Read(key)
	b, err := marshalKeyFile(key, nil, KDFParams{}, t)
	if err != nil {
		return fmt.Errorf("secrets migrate: %w", err)
	}
	if err := writeFileAtomic(newPath, b, true); err != nil {
		return fmt.Errorf("secrets migrate: %w", err)
	}
	crashPoint("new key file written")
	oldID, oldAEAD := v.keyID, v.aead
	v.tpm, v.codes = t, &codes{tpm: t}
	v.keyID, v.aead = keyID(key), newGCM(key)
	if err := v.commit(slices.Clone(v.accounts)); err != nil {
		v.tpm, v.codes, v.keyID, v.aead = nil, nil, oldID, oldAEAD
		return fmt.Errorf("secrets migrate: %w", err)
	}
	crashPoint("vault rewritten under the new key")
	if err := replaceKeyFile(newPath, v.keyPath); err != nil {
		return fmt.Errorf("secrets migrate: %w", err)
	}
	return nil
}

// pendingKeySuffix names the new key file MigrateToTPM writes before the
// vault is rewritten under it.
const pendingKeySuffix = ".new"

// MigrationPending reports whether a MigrateToTPM was cut short beside
// the key file at keyFile: its new key file, sealed to the TPM, is still
// there. Open with the TPM then finishes the migration, whichever step it
// stopped at, so totpd opens the vault with the TPM in the auto and tpm
// modes alike.
func MigrationPending(keyFile string) (bool, error) {
	kind, err := KeyFileKind(keyFile + pendingKeySuffix)
	if err != nil {
		return false, err
	}
	return kind == KeyTPM, nil
}
