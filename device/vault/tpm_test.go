package vault

import (
	"bytes"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/totpbox/totpbox/device/tpm"
	"github.com/totpbox/totpbox/device/tpm/tpmtest"
	"github.com/totpbox/totpbox/enroll"
)

func openTPMVault(t *testing.T, dir string, d *tpm.TPM) *Vault {
	t.Helper()
	v, err := Open(dir, Config{TPM: d})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	return v
}

var rfcSeeds = map[enroll.Algorithm][]byte{
	enroll.SHA1:   []byte("12345678901234567890"),
	enroll.SHA256: []byte("12345678901234567890123456789012"),
	enroll.SHA512: []byte("1234567890123456789012345678901234567890123456789012345678901234"),
}

// TestTPMCodesRFC6238: active SHA-1 and SHA-256 accounts move into the
// TPM, and the codes it computes are RFC 6238's test vectors; a SHA-512
// account stays under the sealed vault key with the same vectors.
func TestTPMCodesRFC6238(t *testing.T) {
	v := openTPMVault(t, t.TempDir(), tpmtest.Open(t, ""))
	tests := []struct {
		unix int64
		alg  enroll.Algorithm
		want string
	}{
		{59, enroll.SHA1, "94287082"}, {59, enroll.SHA256, "46119246"}, {59, enroll.SHA512, "90693936"},
		{1111111109, enroll.SHA1, "07081804"}, {1111111109, enroll.SHA256, "68084774"}, {1111111109, enroll.SHA512, "25091201"},
		{1111111111, enroll.SHA1, "14050471"}, {1111111111, enroll.SHA256, "67062674"}, {1111111111, enroll.SHA512, "99943326"},
		{1234567890, enroll.SHA1, "89005924"}, {1234567890, enroll.SHA256, "91819424"}, {1234567890, enroll.SHA512, "93441116"},
		{2000000000, enroll.SHA1, "69279037"}, {2000000000, enroll.SHA256, "90698825"}, {2000000000, enroll.SHA512, "38618901"},
		{20000000000, enroll.SHA1, "65353130"}, {20000000000, enroll.SHA256, "77737706"}, {20000000000, enroll.SHA512, "47863826"},
	}
	accts := map[enroll.Algorithm]Account{}
	for alg, seed := range rfcSeeds {
		a, err := v.Add(Account{Key: enroll.Key{Issuer: "RFC", Account: alg.String(), Secret: bytes.Clone(seed), Algorithm: alg, Digits: 8, Period: 30 * time.Second}, State: Active})
		if err != nil {
			t.Fatal(err)
		}
		if want := alg != enroll.SHA512; a.InTPM != want {
			t.Errorf("Add(active %v): InTPM = %v, want %v", alg, a.InTPM, want)
		}
		if a.InTPM && len(a.Key.Secret) != 0 {
			t.Errorf("Add(active %v): the account held in the TPM still has its secret", alg)
		}
		accts[alg] = a
	}
	for _, tt := range tests {
		a := accts[tt.alg]
		got, err := a.CodeAt(enroll.Step(a.Key, time.Unix(tt.unix, 0)))
		if err != nil || got != tt.want {
			t.Errorf("CodeAt(%v, %d) = %s, %v, want %s", tt.alg, tt.unix, got, err, tt.want)
		}
	}
}

// TestTPMCodesAgainstPquerna checks TPM-computed codes against an
// independent implementation on random SHA-1 and SHA-256 keys, digits
// and periods, after a close and reopen (the blobs come from the file).
func TestTPMCodesAgainstPquerna(t *testing.T) {
	dir := t.TempDir()
	d := tpmtest.Open(t, "")
	v, err := Open(dir, Config{TPM: d})
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(3, 4))
	algs := map[enroll.Algorithm]otp.Algorithm{enroll.SHA1: otp.AlgorithmSHA1, enroll.SHA256: otp.AlgorithmSHA256}
	var keys []enroll.Key
	for i := range 24 {
		secret := make([]byte, 10+r.IntN(54))
		for j := range secret {
			secret[j] = byte(r.Uint32())
		}
		k := enroll.Key{Issuer: "X", Account: "a", Secret: secret, Algorithm: enroll.Algorithm(i % 2),
			Digits: []int{6, 8}[r.IntN(2)], Period: time.Duration(15+r.IntN(106)) * time.Second}
		keys = append(keys, enroll.Key{Secret: bytes.Clone(secret), Algorithm: k.Algorithm, Digits: k.Digits, Period: k.Period})
		if _, err := v.Add(Account{Key: k, State: Active}); err != nil {
			t.Fatal(err)
		}
	}
	v.Close()
	v = openTPMVault(t, dir, d)
	for i, a := range v.List() {
		k := keys[i]
		if !a.InTPM {
			t.Fatalf("account %d not in the TPM after reopening", i)
		}
		for range 3 {
			at := time.Unix(r.Int64N(4e9), 0)
			want, err := totp.GenerateCodeCustom(k.SecretBase32(), at, totp.ValidateOpts{
				Period: uint(k.Period / time.Second), Digits: otp.Digits(k.Digits), Algorithm: algs[k.Algorithm],
			})
			if err != nil {
				t.Fatal(err)
			}
			if got, err := a.CodeAt(enroll.Step(k, at)); err != nil || got != want {
				t.Fatalf("TPM code (%v, %d digits, %v, t=%d) = %s, %v; pquerna/otp says %s", k.Algorithm, k.Digits, k.Period, at.Unix(), got, err, want)
			}
		}
	}
}

// TestTPMPendingKeepsSecret: a pending account keeps its secret (the QR
// and secret views need it) until it is confirmed, then moves in.
func TestTPMPendingKeepsSecret(t *testing.T) {
	v := openTPMVault(t, t.TempDir(), tpmtest.Open(t, ""))
	seed := rfcSeeds[enroll.SHA1]
	a, err := v.Add(Account{Key: enroll.Key{Account: "p", Secret: bytes.Clone(seed), Digits: 6, Period: 30 * time.Second}, Source: "reg-1"})
	if err != nil {
		t.Fatal(err)
	}
	if a.InTPM || !bytes.Equal(a.Key.Secret, seed) {
		t.Fatalf("pending account: InTPM %v, secret kept %v", a.InTPM, bytes.Equal(a.Key.Secret, seed))
	}
	want := enroll.CodeAt(a.Key, 42)
	a, err = v.Update(a.ID, func(a *Account) error { a.State = Active; return nil })
	if err != nil {
		t.Fatal(err)
	}
	if !a.InTPM || a.Key.Secret != nil {
		t.Fatalf("confirmed account: InTPM %v, secret %d bytes", a.InTPM, len(a.Key.Secret))
	}
	if got, _ := a.CodeAt(42); got != want {
		t.Errorf("code after the move = %s, want %s", got, want)
	}
	// A later change (a rename) keeps it in the TPM.
	if a, err = v.Rename(a.ID, "renamed"); err != nil || !a.InTPM {
		t.Fatalf("Rename: InTPM %v, %v", a.InTPM, err)
	}
	if got, _ := a.CodeAt(42); got != want {
		t.Errorf("code after a rename = %s, want %s", got, want)
	}
}

// TestTPMSecretNotInStateDir: once an account is active, its secret is in
// no file of the vault directory, raw, base32 or base64, and not in the
// vault's decrypted contents either (the vault key unsealed by the test).
func TestTPMSecretNotInStateDir(t *testing.T) {
	dir := t.TempDir()
	d := tpmtest.Open(t, "")
	v := openTPMVault(t, dir, d)
	secret := []byte("\x8a\x11\x5c\xe3\x07\x9d\x42\xf0\x66\x19\xab\xcd\x01\xfe\x77\x30\x55\x21\x9c\xde")
	a, err := v.Add(Account{Key: enroll.Key{Account: "s", Secret: bytes.Clone(secret), Digits: 6, Period: 30 * time.Second}, Source: "reg-2"})
	if err != nil {
		t.Fatal(err)
	}
	plain := decryptVault(t, dir, d)
	b64 := base64.StdEncoding.EncodeToString(secret)
	if !strings.Contains(string(plain), b64) {
		t.Fatal("the pending account's secret is not in the decrypted vault: the check below would prove nothing")
	}
	if _, err := v.Update(a.ID, func(a *Account) error { a.State = Active; return nil }); err != nil {
		t.Fatal(err)
	}
	needles := map[string][]byte{
		"raw": secret, "base32": []byte(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(secret)),
		"base64": []byte(b64),
	}
	filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for what, n := range needles {
			if bytes.Contains(b, n) {
				t.Errorf("%s holds the active account's secret (%s)", p, what)
			}
		}
		return nil
	})
	plain = decryptVault(t, dir, d)
	for what, n := range needles {
		if bytes.Contains(plain, n) {
			t.Errorf("the decrypted vault holds the active account's secret (%s)", what)
		}
	}
}

// decryptVault returns the vault file's plaintext, the data key unsealed
// by d.
func decryptVault(t *testing.T, dir string, d TPM) []byte {
	t.Helper()
	key, err := loadKey(filepath.Join(dir, KeyFileName), nil, d)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, VaultFileName))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := newGCM(key).Open(nil, b[headerSize-nonceSize:headerSize], b[headerSize:], b[:headerSize])
	if err != nil {
		t.Fatal(err)
	}
	var j json.RawMessage
	if json.Unmarshal(plain, &j) != nil {
		t.Fatal("decrypted vault is not JSON")
	}
	return plain
}

// TestTPMCopyRefused is the SD-card copy: the state directory copied and
// opened with another TPM is refused with one line saying what happened
// and what to do; the original board still opens it, codes and all.
func TestTPMCopyRefused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "vault")
	d := tpmtest.Open(t, "")
	v, err := Open(dir, Config{TPM: d})
	if err != nil {
		t.Fatal(err)
	}
	a, err := v.Add(Account{Key: enroll.Key{Account: "c", Secret: bytes.Clone(rfcSeeds[enroll.SHA1]), Digits: 8, Period: 30 * time.Second}, State: Active})
	if err != nil {
		t.Fatal(err)
	}
	v.Close()

	cp := filepath.Join(t.TempDir(), "copy")
	copyDir(t, dir, cp)
	other := tpmtest.Open(t, "")
	_, err = Open(cp, Config{TPM: other})
	if !errors.Is(err, ErrOtherTPM) {
		t.Fatalf("Open(copy, another TPM) = %v, want ErrOtherTPM", err)
	}
	msg := err.Error()
	for _, want := range []string{"sealed to a different TPM", "pair this appliance again", "re-register", "original board"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not say %q", msg, want)
		}
	}
	if strings.Contains(msg, "\n") {
		t.Errorf("error is not one line: %q", msg)
	}
	if _, err := Open(cp, Config{}); !errors.Is(err, ErrTPMRequired) {
		t.Errorf("Open(copy, software) = %v, want ErrTPMRequired", err)
	}

	v = openTPMVault(t, dir, d)
	got, err := v.Get(a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := got.CodeAt(enroll.Step(got.Key, time.Unix(59, 0))); err != nil || c != "94287082" {
		t.Errorf("original board: code = %s, %v, want 94287082", c, err)
	}
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	if err := os.CopyFS(to, os.DirFS(from)); err != nil {
		t.Fatal(err)
	}
}

// TestTPMModeMismatch: a software key file opened with a TPM, or a
// passphrase with a TPM, is refused and changes nothing.
func TestTPMModeMismatch(t *testing.T) {
	dir := t.TempDir()
	v, err := Open(dir, Config{})
	if err != nil {
		t.Fatal(err)
	}
	v.Close()
	before, _ := os.ReadFile(filepath.Join(dir, KeyFileName))
	d := tpmtest.Open(t, "")
	if _, err := Open(dir, Config{TPM: d}); !errors.Is(err, ErrSoftwareKey) || !strings.Contains(err.Error(), "totpctl secrets migrate") {
		t.Errorf("Open(software key, TPM) = %v, want ErrSoftwareKey naming totpctl secrets migrate", err)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, KeyFileName)); !bytes.Equal(before, after) {
		t.Error("the refused open changed the key file")
	}
	if _, err := Open(t.TempDir(), Config{TPM: d, Passphrase: []byte("pw")}); err == nil {
		t.Error("Open(TPM and passphrase) succeeded")
	}
	if k, err := KeyFileKind(filepath.Join(dir, KeyFileName)); err != nil || k != KeySoftware {
		t.Errorf("KeyFileKind = %v, %v, want software", k, err)
	}
}

// TestMigrateToTPM moves a software vault into the TPM: a new data key
// sealed to the TPM, active SHA-1/SHA-256 secrets in the TPM, pending and
// SHA-512 accounts kept, every code unchanged, and the old key file's key
// no longer opening the vault.
func TestMigrateToTPM(t *testing.T) {
	dir := t.TempDir()
	v, err := Open(dir, Config{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	want := map[string]string{}
	for i, alg := range []enroll.Algorithm{enroll.SHA1, enroll.SHA256, enroll.SHA512, enroll.SHA1} {
		a, err := v.Add(Account{Key: enroll.Key{Account: "m", Secret: bytes.Clone(rfcSeeds[alg]), Algorithm: alg, Digits: 6, Period: 30 * time.Second},
			State: State(min(1, 3-i)), Source: "reg-" + string(rune('a'+i))})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, a.ID)
		want[a.ID] = enroll.CodeAt(a.Key, 1234)
	}
	oldKey, _ := os.ReadFile(filepath.Join(dir, KeyFileName))
	d := tpmtest.Open(t, "")
	if err := v.MigrateToTPM(d); err != nil {
		t.Fatal(err)
	}
	if err := v.MigrateToTPM(d); err == nil {
		t.Error("a second MigrateToTPM succeeded")
	}
	v.Close()
	if k, _ := KeyFileKind(filepath.Join(dir, KeyFileName)); k != KeyTPM {
		t.Fatalf("key file after migration: %v, want tpm", k)
	}
	if stray := strayFiles(t, dir); len(stray) > 0 {
		t.Errorf("migration left %v", stray)
	}
	v = openTPMVault(t, dir, d)
	for i, id := range ids {
		a, err := v.Get(id)
		if err != nil {
			t.Fatal(err)
		}
		wantIn := i == 0 || i == 1 // active SHA-1, SHA-256; [2] is SHA-512, [3] pending
		if a.InTPM != wantIn {
			t.Errorf("account %d (%v, %v): InTPM = %v, want %v", i, a.Key.Algorithm, a.State, a.InTPM, wantIn)
		}
		if c, err := a.CodeAt(1234); err != nil || c != want[id] {
			t.Errorf("account %d: code %s, %v, want %s", i, c, err, want[id])
		}
	}
	// The old software key opens nothing written since.
	v.Close()
	old := t.TempDir()
	os.WriteFile(filepath.Join(old, KeyFileName), oldKey, 0o600)
	b, _ := os.ReadFile(filepath.Join(dir, VaultFileName))
	os.WriteFile(filepath.Join(old, VaultFileName), b, 0o600)
	if _, err := Open(old, Config{}); !errors.Is(err, ErrWrongKey) {
		t.Errorf("old key on the migrated vault: %v, want ErrWrongKey", err)
	}
}

// TestMigrateInterrupted: a migration cut short after the new key file
// was written is settled by Open, whichever side of the vault rewrite the
// cut fell on.
func TestMigrateInterrupted(t *testing.T) {
	d := tpmtest.Open(t, "")
	for _, rewritten := range []bool{false, true} {
		dir := t.TempDir()
		v, err := Open(dir, Config{})
		if err != nil {
			t.Fatal(err)
		}
		a, err := v.Add(Account{Key: enroll.Key{Account: "i", Secret: bytes.Clone(rfcSeeds[enroll.SHA1]), Digits: 6, Period: 30 * time.Second}, State: Active})
		if err != nil {
			t.Fatal(err)
		}
		want := enroll.CodeAt(a.Key, 7)
		keyPath := filepath.Join(dir, KeyFileName)
		oldKey, _ := os.ReadFile(keyPath)
		if err := v.MigrateToTPM(d); err != nil {
			t.Fatal(err)
		}
		v.Close()
		newKey, _ := os.ReadFile(keyPath)
		// Put back the state of a cut: the new key file still beside the
		// old one, and (unless rewritten) the vault under the old key.
		os.WriteFile(keyPath+pendingKeySuffix, newKey, 0o600)
		os.WriteFile(keyPath, oldKey, 0o600)
		if !rewritten {
			sw := t.TempDir()
			os.WriteFile(filepath.Join(sw, KeyFileName), oldKey, 0o600)
			v2, err := Open(sw, Config{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := v2.Add(Account{Key: enroll.Key{Account: "i", Secret: bytes.Clone(rfcSeeds[enroll.SHA1]), Digits: 6, Period: 30 * time.Second}, State: Active}); err != nil {
				t.Fatal(err)
			}
			v2.Close()
			b, _ := os.ReadFile(filepath.Join(sw, VaultFileName))
			os.WriteFile(filepath.Join(dir, VaultFileName), b, 0o600)
		}
		var opts Config
		if rewritten {
			opts.TPM = d
		}
		v, err = Open(dir, opts)
		if err != nil {
			t.Fatalf("rewritten=%v: Open after the cut: %v", rewritten, err)
		}
		got, _ := v.List()[0].CodeAt(7)
		v.Close()
		if got != want {
			t.Errorf("rewritten=%v: code %s, want %s", rewritten, got, want)
		}
		if !rewritten {
			// The software vault still works; the migration is run again.
			v, _ = Open(dir, Config{})
			if err := v.MigrateToTPM(d); err != nil {
				t.Fatalf("migrating again: %v", err)
			}
			v.Close()
		}
		if stray := strayFiles(t, dir); len(stray) > 0 {
			t.Errorf("rewritten=%v: left %v", rewritten, stray)
		}
		if k, _ := KeyFileKind(keyPath); k != KeyTPM {
			t.Errorf("rewritten=%v: key file %v, want tpm", rewritten, k)
		}
	}
}
