// Package vault is the appliance's encrypted account store: one file of
// accounts sealed with AES-256-GCM under a data key kept in its own key
// file, which may itself be wrapped by a passphrase (argon2id).
//
// Every change rewrites the vault file atomically and durably (temporary
// file, fsync, rename, fsync of the directory), so after a crash or power
// cut the vault holds either the state before a change or the state after
// it. A vault that cannot be read — damaged, truncated, or written with
// another key — is never replaced: Open refuses it with a one-line error
// and leaves the file as it is.
//
// Layout of the vault directory (0700):
//
//	accounts.vault   the sealed accounts (0600)
//	vault.key        the data key, unless Config.KeyFile puts it elsewhere (0600)
//	vault.lock       flock held by the process that has the vault open
package vault

import (
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// File names inside the vault directory.
const (
	VaultFileName = "accounts.vault"
	KeyFileName   = "vault.key"
	LockFileName  = "vault.lock"
)

// Errors that callers may test for with errors.Is. Errors returned by the
// vault wrap them with the paths involved; none contains a secret.
var (
	ErrNotFound           = errors.New("no such account")
	ErrDuplicateSource    = errors.New("an account from this registration is already in the vault")
	ErrClosed             = errors.New("vault is closed")
	ErrLocked             = errors.New("vault is in use by another process")
	ErrCorrupt            = errors.New("vault file is damaged")
	ErrUnsupportedVersion = errors.New("vault file is from a newer version")
	ErrWrongKey           = errors.New("vault was written with a different key")
	ErrKeyMissing         = errors.New("key file is missing")
	ErrCorruptKey         = errors.New("key file is damaged")
	ErrWrongPassphrase    = errors.New("wrong passphrase")
	ErrPassphraseRequired = errors.New("key file is protected by a passphrase, but none was given")
)

// Config configure Open. The zero value keeps the key file beside the
// vault, unwrapped, and uses the real clock.
type Config struct {
	// KeyFile is the path of the data key file; empty means KeyFileName in
	// the vault directory. Keeping it on other storage lets the vault file
	// be backed up without the key.
	KeyFile string

	// At most one of Passphrase, PassphraseFile and PassphraseEnv may be
	// set. When one is, the key file is protected by the passphrase: a new
	// key file is created wrapped with it, and an existing one must be
	// wrapped with it. When none is, the key file is stored unwrapped.

	// Passphrase is the passphrase itself.
	Passphrase []byte
	// PassphraseFile names a file holding the passphrase; one trailing
	// newline is ignored.
	PassphraseFile string
	// PassphraseEnv names an environment variable holding the passphrase.
	PassphraseEnv string

	// KDF is the argon2id cost used when a new passphrase-protected key
	// file is created; the zero value means DefaultKDF.
	KDF KDFParams

	// Now returns the current time for Created and Updated; nil means
	// time.Now.
	Now func() time.Time

	// TPM, when set, is the appliance's TPM: a new key file is sealed to
	// it, an existing one must be, and each active SHA-1 or SHA-256
	// account's secret moves into it, the vault keeping only the TPM's
	// wrapped blob. Nil is software mode: a copy of the key file and the
	// vault file copies every account. It excludes a passphrase.
	TPM TPM
}

// Vault is an open vault. Its methods are safe for concurrent use. Account
// values returned by it are copies: changing them changes nothing stored.
type Vault struct {
	path    string // vault file
	keyPath string
	now     func() time.Time
	keyID   [keyIDSize]byte
	aead    cipher.AEAD
	tpm     TPM    // nil in software mode
	codes   *codes // with tpm

	// rollForward: the vault was read with the old key of a migration
	// cut short and must be rewritten under the new one (see
	// finishMigration).
	rollForward bool

	mu       sync.RWMutex
	lock     *os.File // nil once closed
	accounts []Account
}

// Open opens the vault in dir, creating dir (0700) if needed, and locks it
// against other processes until Close.
//
// If neither the vault file nor the key file exists, a new data key is made
// and the vault starts empty. If the key file exists but the vault file
// does not, the vault starts empty. If the vault file exists but the key
// file does not, Open fails with ErrKeyMissing rather than make a new key.
// A vault file that cannot be read makes Open fail with ErrCorrupt,
// ErrWrongKey or ErrUnsupportedVersion; the file is left untouched.
//
// Open tightens the modes of an existing dir, vault file and key file to
// 0700 and 0600.
func Open(dir string, opts Config) (*Vault, error) {
	if dir == "" {
		return nil, errors.New("open vault: no directory given")
	}
	pass, err := opts.passphrase()
	if err != nil {
		return nil, err
	}
	defer clear(pass)
	kdf := opts.KDF
	if kdf == (KDFParams{}) {
		kdf = DefaultKDF
	}
	if pass != nil {
		if err := kdf.validate(); err != nil {
			return nil, fmt.Errorf("vault options: %w", err)
		}
	}
	if pass != nil && opts.TPM != nil {
		return nil, errors.New("vault options: a key sealed to the TPM takes no passphrase")
	}
	v := &Vault{
		path:    filepath.Join(dir, VaultFileName),
		keyPath: opts.KeyFile,
		now:     opts.Now,
		tpm:     opts.TPM,
	}
	if v.tpm != nil {
		v.codes = &codes{tpm: v.tpm}
	}
	if v.keyPath == "" {
		v.keyPath = filepath.Join(dir, KeyFileName)
	}
	if v.now == nil {
		v.now = time.Now
	}
	if err := ensurePrivateDir(dir); err != nil {
		return nil, fmt.Errorf("open vault: %w", err)
	}
	lock, err := lockFile(filepath.Join(dir, LockFileName))
	if err != nil {
		if errors.Is(err, ErrLocked) {
			return nil, fmt.Errorf("open vault %s: %w", dir, err)
		}
		return nil, fmt.Errorf("open vault: %w", err)
	}
	if err := v.load(pass, kdf); err != nil {
		lock.Close()
		return nil, err
	}
	v.lock = lock
	if v.rollForward {
		// A migration to the TPM cut short before the vault was
		// rewritten: rewrite it under the new key, then put the new
		// key file in place of the old.
		err := v.commit(slices.Clone(v.accounts))
		if err == nil {
			crashPoint("vault rewritten under the new key at open")
			err = replaceKeyFile(v.keyPath+pendingKeySuffix, v.keyPath)
		}
		if err != nil {
			v.Close()
			return nil, fmt.Errorf("open vault: finishing the move to the TPM: %w", err)
		}
		v.rollForward = false
	}
	if slices.ContainsFunc(v.accounts, movable) {
		// A crash between an activation and its move into the TPM, or a
		// migration: finish it now.
		if err := v.commit(slices.Clone(v.accounts)); err != nil {
			v.Close()
			return nil, fmt.Errorf("open vault: %w", err)
		}
	}
	return v, nil
}

// load reads or creates the key and reads the vault file, holding the lock.
func (v *Vault) load(pass []byte, kdf KDFParams) error {
	if err := removeStaleTemps(v.path); err != nil {
		return fmt.Errorf("open vault: %w", err)
	}
	vaultExists, err := exists(v.path)
	if err != nil {
		return fmt.Errorf("open vault: %w", err)
	}
	newKey, err := v.finishMigration(vaultExists)
	if err != nil {
		return err
	}
	defer clear(newKey)
	keyExists, err := exists(v.keyPath)
	if err != nil {
		return fmt.Errorf("open vault: %w", err)
	}
	var key []byte
	switch {
	case keyExists:
		if err := ensurePrivateFile(v.keyPath); err != nil {
			return fmt.Errorf("open vault: %w", err)
		}
		tpm := v.tpm
		if newKey != nil {
			tpm = nil // the old key of a migration to finish: a software key
		}
		if key, err = loadKey(v.keyPath, pass, tpm); err != nil {
			return err
		}
	case vaultExists:
		return fmt.Errorf("open vault %s: %w: %s; refusing to make a new key for an existing vault", v.path, ErrKeyMissing, v.keyPath)
	default:
		if keyDir := filepath.Dir(v.keyPath); keyDir != filepath.Dir(v.path) {
			if err := ensurePrivateDir(keyDir); err != nil {
				return fmt.Errorf("open vault: %w", err)
			}
		}
		if err := removeStaleTemps(v.keyPath); err != nil {
			return fmt.Errorf("open vault: %w", err)
		}
		if key, err = createKey(v.keyPath, pass, kdf, v.tpm); err != nil {
			return err
		}
	}
	defer clear(key)
	if len(key) != KeySize {
		return fmt.Errorf("vault key file %s: %w", v.keyPath, ErrCorruptKey)
	}
	v.keyID = keyID(key)
	v.aead = newGCM(key)
	if !vaultExists {
		return nil
	}
	if err := ensurePrivateFile(v.path); err != nil {
		return fmt.Errorf("open vault: %w", err)
	}
	b, err := os.ReadFile(v.path)
	if err != nil {
		return fmt.Errorf("open vault: %w", err)
	}
	if v.accounts, err = v.unseal(v.path, b); err != nil {
		return err
	}
	if newKey != nil {
		v.keyID, v.aead = keyID(newKey), newGCM(newKey)
		v.rollForward = true
	}
	return nil
}

// finishMigration settles a MigrateToTPM cut short: the new key file,
// sealed to the TPM, is still beside the old one. Without the TPM nothing
// changes (the vault opens with the old key as long as it was not yet
// rewritten). With the TPM the migration is finished from wherever it
// stopped: if the vault file was already written with the new key (or
// there is none), the new key file replaces the old one; if not, it
// returns the new key, and load reads the vault with the old key and
// Open rewrites it under the new one before the new key file replaces
// the old (see Vault.rollForward). A new key file that the TPM cannot
// unseal is an error that names it: it is never dropped, as the vault
// may need it.
func (v *Vault) finishMigration(vaultExists bool) (newKey []byte, err error) {
	pending := v.keyPath + pendingKeySuffix
	if ok, err := exists(pending); err != nil || !ok {
		return nil, err
	}
	if v.tpm == nil {
		return nil, nil
	}
	if err := removeStaleTemps(pending); err != nil {
		return nil, fmt.Errorf("open vault: %w", err)
	}
	key, err := loadKey(pending, nil, v.tpm)
	if err != nil {
		return nil, fmt.Errorf("open vault: finishing the move to the TPM: %w", err)
	}
	useNew := !vaultExists
	if vaultExists {
		id := keyID(key)
		b, err := os.ReadFile(v.path)
		if err != nil {
			clear(key)
			return nil, fmt.Errorf("open vault: %w", err)
		}
		useNew = len(b) >= headerSize && string(b[len(magic)+2:len(magic)+2+keyIDSize]) == string(id[:])
	}
	if !useNew {
		return key, nil
	}
	clear(key)
	if err := replaceKeyFile(pending, v.keyPath); err != nil {
		return nil, fmt.Errorf("open vault: finishing the move to the TPM: %w", err)
	}
	return nil, nil
}

func exists(path string) (bool, error) {
	_, err := os.Lstat(path)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	}
	return false, err
}

// Path returns the path of the vault file.
func (v *Vault) Path() string { return v.path }

// Close releases the vault's lock. Later calls on v return ErrClosed (List
// returns nil). Closing twice is harmless.
func (v *Vault) Close() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.lock == nil {
		return nil
	}
	err := v.lock.Close()
	v.lock = nil
	for i := range v.accounts {
		clear(v.accounts[i].Key.Secret)
	}
	v.accounts = nil
	return err
}

// Get returns the account with the given id, or an error wrapping
// ErrNotFound.
func (v *Vault) Get(id string) (Account, error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.lock == nil {
		return Account{}, ErrClosed
	}
	i := v.index(id)
	if i < 0 {
		return Account{}, notFound(id)
	}
	return v.out(v.accounts[i]), nil
}

// out returns a copy of a for a caller, able to compute its codes.
func (v *Vault) out(a Account) Account {
	a = a.clone()
	a.codes = v.codes
	return a
}

// List returns every account, in the order they were added.
func (v *Vault) List() []Account {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.lock == nil {
		return nil
	}
	out := make([]Account, 0, len(v.accounts))
	for _, a := range v.accounts {
		out = append(out, v.out(a))
	}
	return out
}

// Len returns the number of accounts.
func (v *Vault) Len() int {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return len(v.accounts)
}

// Add stores a new account and returns it as stored: with a new ID
// (any ID in a is ignored), Created and Updated set to now, Issuer filled
// from the key when empty and Source set to SourceLocal when empty. When
// Add returns without error the account is on disk.
func (v *Vault) Add(a Account) (Account, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.lock == nil {
		return Account{}, ErrClosed
	}
	a = a.clone()
	a.InTPM, a.tpmBlob = false, nil // only the vault moves secrets into the TPM
	if a.Issuer == "" {
		a.Issuer = a.Key.Issuer
	}
	if a.Source == "" {
		a.Source = SourceLocal
	}
	if err := a.validate(); err != nil {
		return Account{}, fmt.Errorf("add account: %w", err)
	}
	if err := v.checkSource(a, ""); err != nil {
		return Account{}, fmt.Errorf("add account: %w", err)
	}
	a.ID = v.newID()
	a.Created = v.timeNow()
	a.Updated = a.Created
	if err := v.commit(append(slices.Clip(v.accounts), a)); err != nil {
		return Account{}, fmt.Errorf("add account: %w", err)
	}
	return v.out(v.accounts[len(v.accounts)-1]), nil
}

// Update calls fn with a copy of the account with the given id and stores
// the result, with Updated set to now. The secret of the copy fn gets is
// wiped when Update returns. fn must not change the ID and must
// not call v; Created is kept as it was. If fn returns an error, or the
// result is invalid, nothing changes. Update returns the account as stored.
func (v *Vault) Update(id string, fn func(*Account) error) (Account, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.lock == nil {
		return Account{}, ErrClosed
	}
	i := v.index(id)
	if i < 0 {
		return Account{}, fmt.Errorf("update account: %w", notFound(id))
	}
	old := v.accounts[i]
	a := old.clone()
	if err := fn(&a); err != nil {
		return Account{}, err
	}
	if a.ID != old.ID {
		return Account{}, fmt.Errorf("update account %s: the id cannot change", id)
	}
	mine := a.Key.Secret
	a = a.clone() // fn may have kept a reference to the secret
	clear(mine)   // the copy handed to fn is wiped (documented)
	a.Created = old.Created
	a.InTPM, a.tpmBlob = old.InTPM, old.tpmBlob
	if a.InTPM {
		clear(a.Key.Secret) // the TPM holds it already
		a.Key.Secret = nil
	}
	a.Updated = v.timeNow()
	if err := a.validate(); err != nil {
		return Account{}, fmt.Errorf("update account %s: %w", id, err)
	}
	if err := v.checkSource(a, id); err != nil {
		return Account{}, fmt.Errorf("update account %s: %w", id, err)
	}
	next := slices.Clone(v.accounts)
	next[i] = a
	if err := v.commit(next); err != nil {
		return Account{}, fmt.Errorf("update account %s: %w", id, err)
	}
	return v.out(v.accounts[i]), nil
}

// Rename sets the label of the account with the given id.
func (v *Vault) Rename(id, label string) (Account, error) {
	if err := validateLabel(label); err != nil {
		return Account{}, fmt.Errorf("rename account %s: %w", id, err)
	}
	return v.Update(id, func(a *Account) error {
		a.Label = label
		return nil
	})
}

// Remove deletes the account with the given id.
func (v *Vault) Remove(id string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.lock == nil {
		return ErrClosed
	}
	i := v.index(id)
	if i < 0 {
		return fmt.Errorf("remove account: %w", notFound(id))
	}
	if err := v.commit(slices.Delete(slices.Clone(v.accounts), i, i+1)); err != nil {
		return fmt.Errorf("remove account %s: %w", id, err)
	}
	return nil
}

// RemoveWhere deletes every account for which match returns true, in one
// atomic write, and returns how many it deleted. Unpairing uses it to wipe
// every account delivered by the server:
//
//	v.RemoveWhere(func(a vault.Account) bool { return !a.IsLocal() })
//
// match must not call v.
func (v *Vault) RemoveWhere(match func(Account) bool) (int, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.lock == nil {
		return 0, ErrClosed
	}
	next := make([]Account, 0, len(v.accounts))
	for _, a := range v.accounts {
		if !match(a.clone()) {
			next = append(next, a)
		}
	}
	n := len(v.accounts) - len(next)
	if n == 0 {
		return 0, nil
	}
	if err := v.commit(next); err != nil {
		return 0, fmt.Errorf("remove accounts: %w", err)
	}
	return n, nil
}

// commit writes next to disk and, once it is durable, makes it the
// vault's state. In TPM mode it first moves every active SHA-1 and
// SHA-256 account into the TPM, and clears their secrets once the vault
// file without them is durable. On error the state is unchanged.
func (v *Vault) commit(next []Account) error {
	next, moved, err := v.intoTPM(next)
	if err != nil {
		return err
	}
	b, err := v.seal(next)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(v.path, b, true); err != nil {
		return fmt.Errorf("write vault: %w", err)
	}
	prev := v.accounts
	v.accounts = next
	for _, s := range moved {
		clear(s)
	}
	wipeDropped(prev, next)
	return nil
}

// wipeDropped clears the secrets of prev that no account of next shares:
// those of removed accounts, and those an update replaced.
func wipeDropped(prev, next []Account) {
	kept := make(map[*byte]bool, len(next))
	for _, a := range next {
		if len(a.Key.Secret) > 0 {
			kept[&a.Key.Secret[0]] = true
		}
	}
	for _, a := range prev {
		if len(a.Key.Secret) > 0 && !kept[&a.Key.Secret[0]] {
			clear(a.Key.Secret)
		}
	}
}

func (v *Vault) index(id string) int {
	return slices.IndexFunc(v.accounts, func(a Account) bool { return a.ID == id })
}

// checkSource reports an error if a non-local a.Source is already used by
// an account other than self.
func (v *Vault) checkSource(a Account, self string) error {
	if a.Source == SourceLocal {
		return nil
	}
	for _, b := range v.accounts {
		if b.Source == a.Source && b.ID != self {
			return fmt.Errorf("%w (account %s)", ErrDuplicateSource, b.ID)
		}
	}
	return nil
}

// newID returns a short random id not used in the vault.
func (v *Vault) newID() string {
	for {
		var b [4]byte
		rand.Read(b[:])
		id := hex.EncodeToString(b[:])
		if v.index(id) < 0 {
			return id
		}
	}
}

func (v *Vault) timeNow() time.Time { return v.now().Round(0).UTC() }

func notFound(id string) error { return fmt.Errorf("account %q: %w", id, ErrNotFound) }
