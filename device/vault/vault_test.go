package vault

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/totpbox/totpbox/internal/testkit"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/totpbox/totpbox/enroll"
)

// testKDF keeps argon2id cheap in tests; the stored parameters are what
// opening uses, so the code paths are the same as with DefaultKDF.
var testKDF = KDFParams{Time: 1, MemoryKiB: 64, Threads: 1}

func testKey(t testing.TB, issuer, account string) enroll.Key {
	t.Helper()
	k, err := enroll.NewKey(issuer, account)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func openT(t testing.TB, dir string, opts Config) *Vault {
	t.Helper()
	v, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open(%s) = %v", dir, err)
	}
	t.Cleanup(func() { v.Close() })
	return v
}

func addT(t testing.TB, v *Vault, a Account) Account {
	t.Helper()
	got, err := v.Add(a)
	if err != nil {
		t.Fatalf("Add(%v) = %v", a, err)
	}
	return got
}

// checkErr fails unless err wraps want, is one line and holds no secret.
func checkErr(t *testing.T, err, want error, secrets ...enroll.Key) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("error = %v, want %v", err, want)
	}
	msg := err.Error()
	if strings.Contains(msg, "\n") {
		t.Errorf("error %q is more than one line", msg)
	}
	for _, k := range secrets {
		if strings.Contains(msg, k.SecretBase32()) || strings.Contains(msg, string(k.Secret)) {
			t.Errorf("error %q contains a secret", msg)
		}
	}
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestOpenCreatesPrivateFiles(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	for _, tc := range []struct {
		name    string
		prepare func(dir string)
	}{
		{"new directory", func(string) {}},
		{"existing open directory", func(dir string) { os.Mkdir(dir, 0o755) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "vault")
			tc.prepare(dir)
			v := openT(t, dir, Config{})
			addT(t, v, Account{Key: testKey(t, "Example", "alice")})
			for path, want := range map[string]os.FileMode{
				dir:                               0o700,
				filepath.Join(dir, VaultFileName): 0o600,
				filepath.Join(dir, KeyFileName):   0o600,
				filepath.Join(dir, LockFileName):  0o600,
			} {
				if got := mode(t, path); got != want {
					t.Errorf("mode of %s = %v, want %v", filepath.Base(path), got, want)
				}
			}
		})
	}
}

func TestOpenTightensModes(t *testing.T) {
	dir := t.TempDir()
	v := openT(t, dir, Config{})
	addT(t, v, Account{Key: testKey(t, "Example", "alice")})
	v.Close()
	for _, p := range []string{filepath.Join(dir, VaultFileName), filepath.Join(dir, KeyFileName)} {
		os.Chmod(p, 0o644)
	}
	os.Chmod(dir, 0o755)
	openT(t, dir, Config{}).Close()
	for path, want := range map[string]os.FileMode{
		dir:                               0o700,
		filepath.Join(dir, VaultFileName): 0o600,
		filepath.Join(dir, KeyFileName):   0o600,
	} {
		if got := mode(t, path); got != want {
			t.Errorf("mode of %s = %v, want %v", path, got, want)
		}
	}
}

func TestAddAssignsIDTimesAndDefaults(t *testing.T) {
	clk := testkit.NewClock(time.Time{})
	v := openT(t, t.TempDir(), Config{Now: clk.Now})
	key := testKey(t, "Example", "alice@example.com")
	a := addT(t, v, Account{ID: "ignored", Key: key, State: Active})
	if a.ID == "" || a.ID == "ignored" {
		t.Errorf("Add ID = %q, want a new id", a.ID)
	}
	if !a.Created.Equal(clk.Now()) || !a.Updated.Equal(clk.Now()) {
		t.Errorf("Add times = %v, %v, want %v", a.Created, a.Updated, clk.Now())
	}
	if a.Issuer != "Example" || a.Source != SourceLocal || a.State != Active {
		t.Errorf("Add = %+v, want issuer from key, local source, active", a)
	}
	b := addT(t, v, Account{Key: testKey(t, "", "bob"), Issuer: "Other", Label: "Bob", Source: "reg-1"})
	if b.ID == a.ID {
		t.Errorf("two accounts share id %q", a.ID)
	}
	if b.Issuer != "Other" || b.Source != "reg-1" || b.State != Pending {
		t.Errorf("Add = %+v, want issuer Other, source reg-1, pending", b)
	}
	got, err := v.Get(a.ID)
	if err != nil || !reflect.DeepEqual(got, a) {
		t.Errorf("Get(%s) = %v, %v; want %v", a.ID, got, err, a)
	}
	// The returned account shares nothing with the vault.
	got.Key.Secret[0] ^= 0xff
	again, _ := v.Get(a.ID)
	if !bytes.Equal(again.Key.Secret, key.Secret) {
		t.Error("changing a returned secret changed the stored one")
	}
}

func TestAddRejectsInvalid(t *testing.T) {
	v := openT(t, t.TempDir(), Config{})
	good := testKey(t, "Example", "alice")
	addT(t, v, Account{Key: good, Source: "reg-1"})
	short := good
	short.Secret = good.Secret[:5]
	badDigits := good
	badDigits.Digits = 7
	for _, tc := range []struct {
		name string
		a    Account
		want string
	}{
		{"no secret", Account{Key: enroll.Key{Digits: 6, Period: 30 * time.Second}}, "missing secret"},
		{"short secret", Account{Key: short}, "under the minimum"},
		{"bad digits", Account{Key: badDigits}, "digits"},
		{"long label", Account{Key: good, Label: strings.Repeat("x", MaxLabelLen+1)}, "label"},
		{"control in label", Account{Key: good, Label: "a\nb"}, "control character"},
		{"bad utf-8", Account{Key: good, Label: "\xff"}, "UTF-8"},
		{"bad state", Account{Key: good, State: State(7)}, "state"},
		{"duplicate source", Account{Key: good, Source: "reg-1"}, "already in the vault"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := v.Add(tc.a)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Add = %v, want error containing %q", err, tc.want)
			}
			checkErr(t, err, err, good)
			if n := v.Len(); n != 1 {
				t.Errorf("after failed Add, Len = %d, want 1", n)
			}
		})
	}
}

func TestPersistsAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	clk := testkit.NewClock(time.Time{})
	v := openT(t, dir, Config{Now: clk.Now})
	var want []Account
	for i, alg := range []enroll.Algorithm{enroll.SHA1, enroll.SHA256, enroll.SHA512} {
		k := testKey(t, fmt.Sprintf("Issuer %d", i), fmt.Sprintf("user%d@example.com", i))
		k.Algorithm, k.Digits, k.Period = alg, 6+2*(i%2), time.Duration(15+45*i)*time.Second
		want = append(want, addT(t, v, Account{Key: k, Label: fmt.Sprintf("Label ü %d", i), Source: fmt.Sprintf("reg-%d", i)}))
		clk.Advance(time.Minute)
	}
	r, err := v.Rename(want[1].ID, "Renamed")
	if err != nil {
		t.Fatal(err)
	}
	want[1] = r
	if err := v.Remove(want[0].ID); err != nil {
		t.Fatal(err)
	}
	want = want[1:]
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}

	v2 := openT(t, dir, Config{Now: clk.Now})
	if got := v2.List(); !reflect.DeepEqual(got, want) {
		t.Errorf("after reopen List() =\n%v\nwant\n%v", got, want)
	}
	for _, a := range want {
		if got, _ := v2.Get(a.ID); got.Key.URI() != a.Key.URI() {
			t.Errorf("Get(%s) key differs after reopen", a.ID)
		}
	}
}

func TestListKeepsAddOrder(t *testing.T) {
	v := openT(t, t.TempDir(), Config{})
	var ids []string
	for i := range 20 {
		ids = append(ids, addT(t, v, Account{Key: testKey(t, "X", fmt.Sprint(i))}).ID)
	}
	v.Rename(ids[3], "renamed")
	var got []string
	for _, a := range v.List() {
		got = append(got, a.ID)
	}
	if !reflect.DeepEqual(got, ids) {
		t.Errorf("List order = %v, want %v", got, ids)
	}
}

func TestUpdate(t *testing.T) {
	dir := t.TempDir()
	clk := testkit.NewClock(time.Time{})
	v := openT(t, dir, Config{Now: clk.Now})
	a := addT(t, v, Account{Key: testKey(t, "Example", "alice"), Source: "reg-1"})
	b := addT(t, v, Account{Key: testKey(t, "Example", "bob"), Source: "reg-2"})
	clk.Advance(time.Hour)

	errFn := errors.New("fn failed")
	for _, tc := range []struct {
		name string
		fn   func(*Account) error
		want string
	}{
		{"fn error", func(a *Account) error { a.Label = "x"; return errFn }, "fn failed"},
		{"id change", func(a *Account) error { a.ID = "other"; return nil }, "id cannot change"},
		{"invalid label", func(a *Account) error { a.Label = "\x00"; return nil }, "control character"},
		{"empty source", func(a *Account) error { a.Source = ""; return nil }, "source is empty"},
		{"taken source", func(a *Account) error { a.Source = "reg-2"; return nil }, "already in the vault"},
		{"bad key", func(a *Account) error { a.Key.Period = time.Second; return nil }, "period"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := v.Update(a.ID, tc.fn)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Update = %v, want error containing %q", err, tc.want)
			}
			if got, _ := v.Get(a.ID); !reflect.DeepEqual(got, a) {
				t.Errorf("after failed Update, Get = %v, want %v", got, a)
			}
		})
	}

	got, err := v.Update(a.ID, func(x *Account) error {
		x.State = Active
		x.Created = time.Time{}
		x.Key.Secret[0] ^= 1 // changing the copy is how a key is replaced
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.State != Active || !got.Created.Equal(a.Created) || !got.Updated.Equal(clk.Now()) || got.Key.Secret[0] == a.Key.Secret[0] {
		t.Errorf("Update = %+v, want active, created kept, updated now, key changed", got)
	}
	if _, err := v.Update("nope", func(*Account) error { return nil }); !errors.Is(err, ErrNotFound) {
		t.Errorf("Update(nope) = %v, want ErrNotFound", err)
	}
	v.Close()
	v = openT(t, dir, Config{})
	if stored, _ := v.Get(a.ID); !reflect.DeepEqual(stored, got) {
		t.Errorf("after reopen Get = %v, want %v", stored, got)
	}
	if stored, _ := v.Get(b.ID); !reflect.DeepEqual(stored, b) {
		t.Errorf("after reopen Get = %v, want %v", stored, b)
	}
}

func TestRenameRemoveNotFound(t *testing.T) {
	v := openT(t, t.TempDir(), Config{})
	a := addT(t, v, Account{Key: testKey(t, "Example", "alice")})
	if _, err := v.Rename(a.ID, strings.Repeat("é", MaxLabelLen+1)); err == nil {
		t.Error("Rename with a long label succeeded")
	}
	if r, err := v.Rename(a.ID, "Front desk"); err != nil || r.Label != "Front desk" || r.Name() != "Front desk" {
		t.Errorf("Rename = %v, %v", r, err)
	}
	for name, err := range map[string]error{
		"Get":    func() error { _, err := v.Get("nope"); return err }(),
		"Rename": func() error { _, err := v.Rename("nope", "x"); return err }(),
		"Remove": v.Remove("nope"),
	} {
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("%s(nope) = %v, want ErrNotFound", name, err)
		}
	}
	if err := v.Remove(a.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Get(a.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after Remove = %v, want ErrNotFound", err)
	}
}

func TestRemoveWhere(t *testing.T) {
	dir := t.TempDir()
	v := openT(t, dir, Config{})
	local := addT(t, v, Account{Key: testKey(t, "Local", "me")})
	for i := range 3 {
		addT(t, v, Account{Key: testKey(t, "Srv", fmt.Sprint(i)), Source: fmt.Sprintf("reg-%d", i)})
	}
	local2 := addT(t, v, Account{Key: testKey(t, "Local", "me2")})
	serverSourced := func(a Account) bool { return !a.IsLocal() }
	if n, err := v.RemoveWhere(serverSourced); n != 3 || err != nil {
		t.Errorf("RemoveWhere = %d, %v; want 3, nil", n, err)
	}
	if n, err := v.RemoveWhere(serverSourced); n != 0 || err != nil {
		t.Errorf("second RemoveWhere = %d, %v; want 0, nil", n, err)
	}
	v.Close()
	v = openT(t, dir, Config{})
	if got, want := v.List(), []Account{local, local2}; !reflect.DeepEqual(got, want) {
		t.Errorf("after RemoveWhere and reopen List = %v, want %v", got, want)
	}
}

func TestClosed(t *testing.T) {
	v, err := Open(t.TempDir(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	a := addT(t, v, Account{Key: testKey(t, "Example", "alice")})
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	if err := v.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	for name, err := range map[string]error{
		"Add":         func() error { _, err := v.Add(a); return err }(),
		"Get":         func() error { _, err := v.Get(a.ID); return err }(),
		"Rename":      func() error { _, err := v.Rename(a.ID, "x"); return err }(),
		"Remove":      v.Remove(a.ID),
		"RemoveWhere": func() error { _, err := v.RemoveWhere(func(Account) bool { return true }); return err }(),
	} {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", name, err)
		}
	}
	if l := v.List(); l != nil {
		t.Errorf("List after Close = %v, want nil", l)
	}
}

func TestSecondOpenIsLocked(t *testing.T) {
	dir := t.TempDir()
	v := openT(t, dir, Config{})
	_, err := Open(dir, Config{})
	checkErr(t, err, ErrLocked)
	v.Close()
	openT(t, dir, Config{})
}

// vaultWith makes a vault in a new directory holding one account and
// returns the directory, the account and the vault file's bytes.
func vaultWith(t *testing.T, opts Config) (string, Account, []byte) {
	t.Helper()
	dir := t.TempDir()
	v := openT(t, dir, opts)
	a := addT(t, v, Account{Key: testKey(t, "Example", "alice")})
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, VaultFileName))
	if err != nil {
		t.Fatal(err)
	}
	return dir, a, b
}

func TestBadVaultFileIsKept(t *testing.T) {
	// Offsets below zero count from the end of the file.
	at := func(f []byte, off int) int {
		if off < 0 {
			return len(f) + off
		}
		return off
	}
	set := func(off int, b ...byte) func([]byte) []byte {
		return func(f []byte) []byte { copy(f[off:], b); return f }
	}
	flip := func(off int) func([]byte) []byte {
		return func(f []byte) []byte { f[at(f, off)] ^= 0x01; return f }
	}
	trunc := func(m int) func([]byte) []byte { return func(f []byte) []byte { return f[:at(f, m)] } }
	half := func(f []byte) []byte { return f[:len(f)/2] }
	version := func(ver uint16) func([]byte) []byte {
		return func(f []byte) []byte { binary.BigEndian.PutUint16(f[len(magic):], ver); return f }
	}
	for _, tc := range []struct {
		name   string
		damage func([]byte) []byte
		want   error
		text   string
	}{
		{"empty", trunc(0), ErrCorrupt, "empty"},
		{"truncated in magic", trunc(4), ErrCorrupt, "truncated"},
		{"truncated in header", trunc(headerSize - 1), ErrCorrupt, "truncated"},
		{"truncated in tag", trunc(headerSize + 10), ErrCorrupt, "truncated"},
		{"truncated by one", trunc(-1), ErrCorrupt, "authentication failed"},
		{"truncated in half", half, ErrCorrupt, "authentication failed"},
		{"garbage appended", func(f []byte) []byte { return append(f, 0) }, ErrCorrupt, "authentication failed"},
		{"not a vault", set(0, []byte("{\"accounts\"")...), ErrCorrupt, "not a totpbox vault"},
		{"flipped ciphertext", flip(headerSize + 3), ErrCorrupt, "authentication failed"},
		{"flipped tag", flip(-1), ErrCorrupt, "authentication failed"},
		{"flipped nonce", flip(headerSize - 1), ErrCorrupt, "authentication failed"},
		{"version 0", version(0), ErrCorrupt, "version 0"},
		{"newer version", version(2), ErrUnsupportedVersion, "version 2"},
		{"other key id", flip(len(magic) + 2), ErrWrongKey, "different key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, a, good := vaultWith(t, Config{})
			path := filepath.Join(dir, VaultFileName)
			bad := tc.damage(bytes.Clone(good))
			if err := os.WriteFile(path, bad, 0o600); err != nil {
				t.Fatal(err)
			}
			for range 2 { // a second attempt must find the same file
				_, err := Open(dir, Config{})
				checkErr(t, err, tc.want, a.Key)
				if !strings.Contains(err.Error(), tc.text) || !strings.Contains(err.Error(), path) {
					t.Errorf("Open error %q does not name the path and %q", err, tc.text)
				}
				if got, _ := os.ReadFile(path); !bytes.Equal(got, bad) {
					t.Fatal("failed Open changed the vault file")
				}
			}
		})
	}
}

func TestWrongKeyFile(t *testing.T) {
	dir, a, good := vaultWith(t, Config{})
	otherDir := t.TempDir()
	openT(t, otherDir, Config{}).Close()
	_, err := Open(dir, Config{KeyFile: filepath.Join(otherDir, KeyFileName)})
	checkErr(t, err, ErrWrongKey, a.Key)
	// Replacing the key file itself is caught the same way.
	kb, _ := os.ReadFile(filepath.Join(otherDir, KeyFileName))
	os.WriteFile(filepath.Join(dir, KeyFileName), kb, 0o600)
	_, err = Open(dir, Config{})
	checkErr(t, err, ErrWrongKey, a.Key)
	if got, _ := os.ReadFile(filepath.Join(dir, VaultFileName)); !bytes.Equal(got, good) {
		t.Error("Open with the wrong key changed the vault file")
	}
}

func TestMissingKeyWithVaultIsAnError(t *testing.T) {
	dir, a, good := vaultWith(t, Config{})
	keyPath := filepath.Join(dir, KeyFileName)
	os.Remove(keyPath)
	_, err := Open(dir, Config{})
	checkErr(t, err, ErrKeyMissing, a.Key)
	if _, serr := os.Stat(keyPath); serr == nil {
		t.Error("Open made a new key for an existing vault")
	}
	if got, _ := os.ReadFile(filepath.Join(dir, VaultFileName)); !bytes.Equal(got, good) {
		t.Error("Open without a key changed the vault file")
	}
}

func TestMissingVaultWithKeyIsEmpty(t *testing.T) {
	dir, _, _ := vaultWith(t, Config{})
	key, _ := os.ReadFile(filepath.Join(dir, KeyFileName))
	os.Remove(filepath.Join(dir, VaultFileName))
	v := openT(t, dir, Config{})
	if n := v.Len(); n != 0 {
		t.Errorf("Len = %d, want 0", n)
	}
	addT(t, v, Account{Key: testKey(t, "Example", "bob")})
	if got, _ := os.ReadFile(filepath.Join(dir, KeyFileName)); !bytes.Equal(got, key) {
		t.Error("key file changed")
	}
}

func TestCorruptKeyFile(t *testing.T) {
	for _, content := range []string{"", "{", `{"format":"other","version":1}`, `{"format":"totpbox-vault-key","version":1,"key":"AAAA"}`} {
		dir, a, _ := vaultWith(t, Config{})
		os.WriteFile(filepath.Join(dir, KeyFileName), []byte(content), 0o600)
		_, err := Open(dir, Config{})
		checkErr(t, err, ErrCorruptKey, a.Key)
	}
}

func TestStaleTempFilesAreRemoved(t *testing.T) {
	dir, a, _ := vaultWith(t, Config{})
	stale := filepath.Join(dir, tempPrefix(filepath.Join(dir, VaultFileName))+"123")
	os.WriteFile(stale, []byte("half a write"), 0o600)
	v := openT(t, dir, Config{})
	if _, err := os.Stat(stale); err == nil {
		t.Error("stale temporary file is still there")
	}
	if _, err := v.Get(a.ID); err != nil {
		t.Error(err)
	}
}

func TestFailedWriteChangesNothing(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "v")
	v := openT(t, dir, Config{})
	a := addT(t, v, Account{Key: testKey(t, "Example", "alice")})
	// With the directory gone, every write fails.
	moved := filepath.Join(parent, "moved")
	if err := os.Rename(dir, moved); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Add(Account{Key: testKey(t, "Example", "bob")}); err == nil {
		t.Error("Add succeeded without a directory")
	}
	if _, err := v.Rename(a.ID, "x"); err == nil {
		t.Error("Rename succeeded without a directory")
	}
	if err := v.Remove(a.ID); err == nil {
		t.Error("Remove succeeded without a directory")
	}
	if got := v.List(); !reflect.DeepEqual(got, []Account{a}) {
		t.Errorf("after failed writes List = %v, want %v", got, []Account{a})
	}
	os.Rename(moved, dir)
	addT(t, v, Account{Key: testKey(t, "Example", "carol")})
}

func TestPassphrase(t *testing.T) {
	pass := []byte("correct horse battery staple")
	dir := t.TempDir()
	v := openT(t, dir, Config{Passphrase: pass, KDF: testKDF})
	a := addT(t, v, Account{Key: testKey(t, "Example", "alice")})
	v.Close()
	kf, _ := os.ReadFile(filepath.Join(dir, KeyFileName))
	if !bytes.Contains(kf, []byte(`"argon2id"`)) || bytes.Contains(kf, []byte(`"key"`)) {
		t.Fatalf("key file is not wrapped:\n%s", kf)
	}

	passFile := filepath.Join(t.TempDir(), "pass")
	os.WriteFile(passFile, append(bytes.Clone(pass), '\n'), 0o600)
	t.Setenv("TEST_VAULT_PASS", string(pass))
	t.Setenv("TEST_VAULT_EMPTY", "")
	emptyFile := filepath.Join(t.TempDir(), "empty")
	os.WriteFile(emptyFile, []byte("\n"), 0o600)

	for _, tc := range []struct {
		name string
		opts Config
		want error  // nil: opens
		text string // part of the error
	}{
		{"passphrase", Config{Passphrase: pass}, nil, ""},
		{"file", Config{PassphraseFile: passFile}, nil, ""},
		{"env", Config{PassphraseEnv: "TEST_VAULT_PASS"}, nil, ""},
		{"wrong", Config{Passphrase: []byte("wrong")}, ErrWrongPassphrase, "wrong passphrase"},
		{"none", Config{}, ErrPassphraseRequired, "protected by a passphrase"},
		{"unset env", Config{PassphraseEnv: "TEST_VAULT_UNSET"}, nil, "is not set"},
		{"empty env", Config{PassphraseEnv: "TEST_VAULT_EMPTY"}, nil, "is empty"},
		{"empty file", Config{PassphraseFile: emptyFile}, nil, "is empty"},
		{"missing file", Config{PassphraseFile: filepath.Join(dir, "nope")}, nil, "no such file"},
		{"empty", Config{Passphrase: []byte{}}, nil, "is empty"},
		{"two sources", Config{Passphrase: pass, PassphraseEnv: "TEST_VAULT_PASS"}, nil, "at most one"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := Open(dir, tc.opts)
			if tc.want == nil && tc.text == "" {
				if err != nil {
					t.Fatalf("Open = %v", err)
				}
				defer v.Close()
				if got, err := v.Get(a.ID); err != nil || !bytes.Equal(got.Key.Secret, a.Key.Secret) {
					t.Errorf("Get = %v, %v", got, err)
				}
				return
			}
			if err == nil {
				v.Close()
				t.Fatal("Open succeeded")
			}
			if tc.want != nil {
				checkErr(t, err, tc.want, a.Key)
			}
			if !strings.Contains(err.Error(), tc.text) || strings.Contains(err.Error(), string(pass)) {
				t.Errorf("Open error %q: want it to contain %q and not the passphrase", err, tc.text)
			}
		})
	}
}

func TestPassphraseGivenForPlainKey(t *testing.T) {
	dir, _, _ := vaultWith(t, Config{})
	_, err := Open(dir, Config{Passphrase: []byte("secret")})
	if err == nil || !strings.Contains(err.Error(), "not protected by a passphrase") {
		t.Errorf("Open = %v, want an error about an unprotected key file", err)
	}
}

func TestSecretNeverPrinted(t *testing.T) {
	v := openT(t, t.TempDir(), Config{})
	a := addT(t, v, Account{Key: testKey(t, "Example", "alice"), Label: "Front desk"})
	var logBuf bytes.Buffer
	slog.New(slog.NewTextHandler(&logBuf, nil)).Info("added", "account", a)
	slog.New(slog.NewJSONHandler(&logBuf, nil)).Info("added", "account", a)
	outputs := []string{
		a.String(), fmt.Sprint(a), fmt.Sprintf("%v %+v %#v %s", a, a, a, a),
		fmt.Sprintf("%v %+v", []Account{a}, &a), logBuf.String(),
	}
	for _, out := range outputs {
		if strings.Contains(out, a.Key.SecretBase32()) || strings.Contains(out, fmt.Sprint(a.Key.Secret)) ||
			strings.Contains(out, fmt.Sprintf("%x", a.Key.Secret)) {
			t.Errorf("output shows the secret: %s", out)
		}
		if !strings.Contains(out, a.ID) {
			t.Errorf("output %q does not name the account", out)
		}
	}
}

func TestAccountName(t *testing.T) {
	for _, tc := range []struct {
		a    Account
		want string
	}{
		{Account{Label: "Desk", Issuer: "Ex", Key: enroll.Key{Account: "al"}}, "Desk"},
		{Account{Issuer: "Ex", Key: enroll.Key{Account: "al"}}, "Ex: al"},
		{Account{Issuer: "Ex"}, "Ex"},
		{Account{Key: enroll.Key{Account: "al"}}, "al"},
	} {
		if got := tc.a.Name(); got != tc.want {
			t.Errorf("Name(%v) = %q, want %q", tc.a, got, tc.want)
		}
	}
}

func TestStateText(t *testing.T) {
	for _, s := range []State{Pending, Active} {
		b, err := s.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var got State
		if err := got.UnmarshalText(b); err != nil || got != s {
			t.Errorf("round trip of %v = %v, %v", s, got, err)
		}
	}
	if _, err := State(5).MarshalText(); err == nil {
		t.Error("MarshalText(5) succeeded")
	}
	if _, err := ParseState("done"); err == nil {
		t.Error(`ParseState("done") succeeded`)
	}
}

func TestConcurrentUse(t *testing.T) {
	dir := t.TempDir()
	v := openT(t, dir, Config{})
	const workers, each = 4, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers*each*3)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				a, err := v.Add(Account{Key: testKey(t, "W", fmt.Sprintf("%d-%d", w, i))})
				if err != nil {
					errs <- err
					continue
				}
				if _, err := v.Rename(a.ID, fmt.Sprintf("w%d", w)); err != nil {
					errs <- err
				}
				v.List()
				if i%2 == 1 {
					if err := v.Remove(a.ID); err != nil {
						errs <- err
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	want := v.List()
	if len(want) != workers*each/2 {
		t.Errorf("Len = %d, want %d", len(want), workers*each/2)
	}
	v.Close()
	if got := openT(t, dir, Config{}).List(); !reflect.DeepEqual(got, want) {
		t.Errorf("after reopen %d accounts, want %d", len(got), len(want))
	}
}
