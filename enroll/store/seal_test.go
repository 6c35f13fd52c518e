package store_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/totpbox/totpbox/enroll/store"
)

func key(b byte) store.MasterKey {
	k := bytes.Repeat([]byte{b}, store.KeySize)
	return store.MasterKey{ID: store.KeyID(k), Key: k}
}

func TestSealOpen(t *testing.T) {
	old, cur := key(1), key(2)
	s, err := store.NewSealer(cur, old)
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte("JBSWY3DPEHPK3PXP-secret")
	aad := []byte("user:1 uid:abc")
	sealed, err := s.Seal(secret, aad)
	if err != nil {
		t.Fatal(err)
	}
	if sealed.KeyID != cur.ID || s.NeedsReseal(sealed) {
		t.Errorf("sealed with key %q, want primary %q", sealed.KeyID, cur.ID)
	}
	if bytes.Contains(sealed.Ciphertext, secret) {
		t.Errorf("ciphertext contains the plaintext")
	}
	again, _ := s.Seal(secret, aad)
	if bytes.Equal(again.Ciphertext, sealed.Ciphertext) {
		t.Errorf("two seals of one secret are equal: nonce reused")
	}
	got, err := s.Open(sealed, aad)
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("Open = %q, %v; want the secret", got, err)
	}

	// Rotation: a sealer whose primary was old still opens, a sealer that
	// only knows old seals with it, and the new one opens those.
	oldOnly, _ := store.NewSealer(old)
	byOld, _ := oldOnly.Seal(secret, aad)
	if got, err := s.Open(byOld, aad); err != nil || !bytes.Equal(got, secret) {
		t.Errorf("Open(sealed by retired key) = %q, %v", got, err)
	}
	if !s.NeedsReseal(byOld) {
		t.Errorf("NeedsReseal(sealed by retired key) = false")
	}

	flip := func(b []byte, i int) []byte {
		c := bytes.Clone(b)
		c[i] ^= 1
		return c
	}
	tests := []struct {
		name   string
		sealed store.Sealed
		aad    []byte
	}{
		{"other aad", sealed, []byte("user:1 uid:abd")},
		{"no aad", sealed, nil},
		{"flipped nonce", store.Sealed{KeyID: sealed.KeyID, Ciphertext: flip(sealed.Ciphertext, 0)}, aad},
		{"flipped body", store.Sealed{KeyID: sealed.KeyID, Ciphertext: flip(sealed.Ciphertext, 14)}, aad},
		{"flipped tag", store.Sealed{KeyID: sealed.KeyID, Ciphertext: flip(sealed.Ciphertext, len(sealed.Ciphertext)-1)}, aad},
		{"truncated", store.Sealed{KeyID: sealed.KeyID, Ciphertext: sealed.Ciphertext[:20]}, aad},
		{"empty", store.Sealed{KeyID: sealed.KeyID}, aad},
		{"key id swapped", store.Sealed{KeyID: old.ID, Ciphertext: sealed.Ciphertext}, aad},
		{"unknown key", store.Sealed{KeyID: "nope", Ciphertext: sealed.Ciphertext}, aad},
	}
	for _, tc := range tests {
		got, err := s.Open(tc.sealed, tc.aad)
		if !errors.Is(err, store.ErrUnsealable) || got != nil {
			t.Errorf("Open(%s) = %q, %v; want ErrUnsealable", tc.name, got, err)
			continue
		}
		if msg := err.Error(); strings.Contains(msg, string(secret)) || strings.Contains(msg, string(cur.Key)) {
			t.Errorf("Open(%s) error leaks a secret: %s", tc.name, msg)
		}
	}
}

func TestSealDevice(t *testing.T) {
	s, _ := store.NewSealer(key(3))
	secret := []byte("12345678901234567890")
	a := store.Device{ID: 1, UserID: 7, Name: "Phone"}
	if err := s.SealDevice(&a, secret); err != nil {
		t.Fatal(err)
	}
	if a.UID == "" {
		t.Fatalf("SealDevice left UID empty")
	}
	a.Name = "Renamed" // a rename keeps the secret readable
	if got, err := s.OpenDevice(a); err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("OpenDevice = %q, %v", got, err)
	}
	b := store.Device{ID: 2, UserID: 7, Name: "Tablet"}
	if err := s.SealDevice(&b, []byte("other")); err != nil {
		t.Fatal(err)
	}
	// A ciphertext moved to another row, or a row moved to another user,
	// does not open.
	swapped := b
	swapped.Secret = a.Secret
	if _, err := s.OpenDevice(swapped); !errors.Is(err, store.ErrUnsealable) {
		t.Errorf("OpenDevice(swapped ciphertext) = %v, want ErrUnsealable", err)
	}
	moved := a
	moved.UserID = 8
	if _, err := s.OpenDevice(moved); !errors.Is(err, store.ErrUnsealable) {
		t.Errorf("OpenDevice(other user) = %v, want ErrUnsealable", err)
	}
	if err := s.SealDevice(&store.Device{}, secret); err == nil {
		t.Errorf("SealDevice(no user) succeeded")
	}
}

func TestNewSealerErrors(t *testing.T) {
	tests := []struct {
		name string
		keys []store.MasterKey
	}{
		{"short key", []store.MasterKey{{ID: "a", Key: make([]byte, 16)}}},
		{"no id", []store.MasterKey{{Key: make([]byte, 32)}}},
		{"duplicate id", []store.MasterKey{key(1), key(1)}},
	}
	for _, tc := range tests {
		if _, err := store.NewSealer(tc.keys[0], tc.keys[1:]...); err == nil {
			t.Errorf("NewSealer(%s) succeeded", tc.name)
		}
	}
}

func TestParseKeys(t *testing.T) {
	k1, k2 := key(1).Key, key(2).Key
	std, url := base64.StdEncoding.EncodeToString(k1), base64.RawURLEncoding.EncodeToString(k2)
	tests := []struct {
		text    string
		wantIDs []string
		wantErr bool
	}{
		{std, []string{key(1).ID}, false},
		{"# comment, with commas\n" + std + "\n\n" + url + "\n", []string{key(1).ID, key(2).ID}, false},
		{std + "," + url, []string{key(1).ID, key(2).ID}, false},
		{"  " + url + " " + std + "  ", []string{key(2).ID, key(1).ID}, false},
		{"", nil, true},
		{"# only a comment\n", nil, true},
		{base64.StdEncoding.EncodeToString(k1[:16]), nil, true},
		{"not*base64", nil, true},
	}
	for _, tc := range tests {
		keys, err := store.ParseKeys(tc.text)
		if (err != nil) != tc.wantErr {
			t.Errorf("ParseKeys(%q) error %v, want error %v", tc.text, err, tc.wantErr)
			continue
		}
		var ids []string
		for _, k := range keys {
			ids = append(ids, k.ID)
		}
		if strings.Join(ids, ",") != strings.Join(tc.wantIDs, ",") {
			t.Errorf("ParseKeys(%q) ids %v, want %v", tc.text, ids, tc.wantIDs)
		}
	}
	if _, err := store.ParseKeys("abc" + std[3:] + "x"); err != nil && strings.Contains(err.Error(), std[3:]) {
		t.Errorf("ParseKeys error quotes the key: %v", err)
	}
}

func TestLoadSealerKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "master.key")
	s1, err := store.LoadSealer(path, "")
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("new key file mode %04o, want 0600", fi.Mode().Perm())
	}
	sealed, _ := s1.Seal([]byte("secret"), nil)
	// Loading again reads the same key.
	s2, err := store.LoadSealer(path, "")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s2.Open(sealed, nil); err != nil || string(got) != "secret" {
		t.Errorf("reloaded sealer: Open = %q, %v", got, err)
	}
	if err := store.NewKeyFile(path); !errors.Is(err, fs.ErrExist) {
		t.Errorf("NewKeyFile(existing) = %v, want fs.ErrExist", err)
	}

	// The env value wins over the file.
	env := base64.StdEncoding.EncodeToString(key(9).Key)
	s3, err := store.LoadSealer(path, env)
	if err != nil {
		t.Fatal(err)
	}
	if s3.PrimaryKeyID() != key(9).ID {
		t.Errorf("LoadSealer(file, env) primary %q, want the env key %q", s3.PrimaryKeyID(), key(9).ID)
	}

	// Rotation in the file: a new first line, the old key kept below.
	old, _ := os.ReadFile(path)
	rotated := base64.StdEncoding.EncodeToString(key(5).Key) + "\n" + string(old)
	if err := os.WriteFile(path, []byte(rotated), 0o600); err != nil {
		t.Fatal(err)
	}
	s4, err := store.LoadSealer(path, "")
	if err != nil {
		t.Fatal(err)
	}
	if s4.PrimaryKeyID() != key(5).ID || !s4.NeedsReseal(sealed) {
		t.Errorf("after rotation primary %q, want %q", s4.PrimaryKeyID(), key(5).ID)
	}
	if got, err := s4.Open(sealed, nil); err != nil || string(got) != "secret" {
		t.Errorf("after rotation: Open(old) = %q, %v", got, err)
	}

	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := store.LoadSealer(path, ""); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("LoadSealer(world-readable file) = %v, want a mode error", err)
	}
	bad := filepath.Join(t.TempDir(), "bad.key")
	os.WriteFile(bad, []byte("garbage-key-text\n"), 0o600)
	if _, err := store.LoadSealer(bad, ""); err == nil || strings.Contains(err.Error(), "garbage-key-text") {
		t.Errorf("LoadSealer(bad file) = %v, want an error that does not quote the file", err)
	}
	if _, err := store.LoadSealer("", ""); err == nil {
		t.Errorf("LoadSealer with no source succeeded")
	}
	if _, err := store.LoadSealer(filepath.Join(t.TempDir(), "missing-dir", "k"), ""); err == nil {
		t.Errorf("LoadSealer in a missing directory succeeded")
	}
}

func TestLoadSealerConcurrentCreate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "master.key")
	var wg sync.WaitGroup
	ids := make([]string, 8)
	for i := range ids {
		wg.Go(func() {
			s, err := store.LoadSealer(path, "")
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = s.PrimaryKeyID()
		})
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("concurrent first loads got different keys: %v", ids)
		}
	}
}

// TestSecretSealedAtRest: what reaches the database file is the
// ciphertext, never the TOTP secret.
func TestSecretSealedAtRest(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	s, err := store.Open(ctx, dir, "")
	if err != nil {
		t.Fatal(err)
	}
	sealer, _ := store.NewSealer(key(4))
	u := store.User{Username: "alice"}
	if err := s.CreateUser(ctx, &u); err != nil {
		t.Fatal(err)
	}
	secret := []byte("THIS-IS-THE-TOTP-SECRET-0123456789")
	d := store.Device{UserID: u.ID, Name: "Phone", Kind: store.KindAuthenticatorApp, Status: store.StatusPending,
		Algorithm: "SHA1", Digits: 6, PeriodSec: 30}
	if err := sealer.SealDevice(&d, secret); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateDevice(ctx, &d); err != nil {
		t.Fatal(err)
	}
	got, err := s.Device(ctx, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := sealer.OpenDevice(got); err != nil || !bytes.Equal(pt, secret) {
		t.Fatalf("OpenDevice(stored) = %q, %v", pt, err)
	}
	s.Close()
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, secret) {
			t.Errorf("%s holds the TOTP secret in the clear", e.Name())
		}
	}
}

func TestMAC(t *testing.T) {
	old, cur := key(1), key(2)
	before, _ := store.NewSealer(old)
	after, _ := store.NewSealer(cur, old)
	other, _ := store.NewSealer(key(3))
	msg := []byte("alice\x00device-1")
	tag := before.MAC("device", msg)
	switch {
	case !before.CheckMAC("device", msg, tag):
		t.Error("a tag does not check under the key that made it")
	case !after.CheckMAC("device", msg, tag):
		t.Error("a tag made before a rotation does not check after it")
	case other.CheckMAC("device", msg, tag):
		t.Error("a tag checks under an unrelated key")
	case before.CheckMAC("session", msg, tag):
		t.Error("a tag checks for another purpose")
	case before.CheckMAC("device", []byte("mallory\x00device-1"), tag):
		t.Error("a tag checks for another message")
	}
	if bytes.Equal(after.MAC("device", msg), tag) {
		t.Error("after a rotation new tags still use the old key")
	}
}
