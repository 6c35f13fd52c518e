package serve

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/totpbox/totpbox/enroll/store"
	"github.com/totpbox/totpbox/enroll/store/storetest"
)

// isolateCredentials clears the systemd credential variable and points
// CredStoreDirs at an empty temporary directory, which it returns.
func isolateCredentials(t *testing.T) string {
	t.Helper()
	t.Setenv("CREDENTIALS_DIRECTORY", "")
	store := t.TempDir()
	old := CredStoreDirs
	CredStoreDirs = []string{store}
	t.Cleanup(func() { CredStoreDirs = old })
	return store
}

func writeFile(t *testing.T, path, text string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // past the umask
		t.Fatal(err)
	}
}

// TestMasterKeyLookupOrder checks where the server reads its master key:
// master_key, then master_key_file, then $CREDENTIALS_DIRECTORY/master.key,
// then <data>/master.key.
func TestMasterKeyLookupOrder(t *testing.T) {
	idOf := func(b byte) string { return store.KeyID(bytes.Repeat([]byte{b}, 32)) }
	variable, file, cred := key32, key32b, base64Key(0x11)
	tests := []struct {
		name     string
		key      string // master_key
		keyFile  bool   // master_key_file set (holding key32b)
		credDir  bool   // CREDENTIALS_DIRECTORY set
		credFile bool   // ... holding master.key
		wantKind keyKind
		wantID   string // primary key id of the loaded sealer; "" for a new random key
	}{
		{name: "variable wins over everything", key: variable, keyFile: true, credDir: true, credFile: true, wantKind: keyVariable, wantID: idOf(0x5a)},
		{name: "master_key_file wins over the credential", keyFile: true, credDir: true, credFile: true, wantKind: keyFile, wantID: idOf(0xa5)},
		{name: "credential wins over the data directory", credDir: true, credFile: true, wantKind: keyCredential, wantID: idOf(0x11)},
		{name: "credentials directory without master.key", credDir: true, wantKind: keyFile},
		{name: "no credentials at all", wantKind: keyFile},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			isolateCredentials(t)
			dir := t.TempDir()
			c := Defaults()
			c.Data = filepath.Join(dir, "data")
			c.MasterKey = tc.key
			if tc.keyFile {
				c.MasterKeyFile = filepath.Join(dir, "elsewhere", "master.key")
				writeFile(t, c.MasterKeyFile, file+"\n", 0o600)
			}
			credDir := filepath.Join(dir, "creds")
			if tc.credDir {
				if err := os.MkdirAll(credDir, 0o700); err != nil {
					t.Fatal(err)
				}
				t.Setenv("CREDENTIALS_DIRECTORY", credDir)
			}
			if tc.credFile {
				// systemd makes it 0400 and grants the service user read
				// through an ACL, whose mask shows in the group bits.
				writeFile(t, filepath.Join(credDir, credentialName), "# comment\n"+cred+"\n", 0o440)
			}
			if err := os.MkdirAll(c.Data, 0o700); err != nil {
				t.Fatal(err)
			}
			k := c.KeySource()
			if k.kind != tc.wantKind {
				t.Fatalf("masterKey() = %v, want kind %d", k, tc.wantKind)
			}
			s, err := c.loadSealer()
			if err != nil {
				t.Fatalf("loadSealer: %v", err)
			}
			if tc.wantID != "" && s.PrimaryKeyID() != tc.wantID {
				t.Errorf("loaded key %s, want %s (from %v)", s.PrimaryKeyID(), tc.wantID, k)
			}
			_, err = os.Stat(filepath.Join(c.Data, "master.key"))
			if created := err == nil; created != (tc.wantID == "") {
				t.Errorf("<data>/master.key created = %v, want %v", created, tc.wantID == "")
			}
		})
	}
}

// TestLoadConfigTakesTheCredential checks that Load leaves
// master_key_file empty when the credential is there, so serve reads it.
func TestLoadConfigTakesTheCredential(t *testing.T) {
	isolateCredentials(t)
	credDir := t.TempDir()
	writeFile(t, filepath.Join(credDir, credentialName), key32+"\n", 0o400)
	t.Setenv("CREDENTIALS_DIRECTORY", credDir)
	data := t.TempDir()
	c, err := Load("", func(c *Config) { c.Data = data })
	if err != nil {
		t.Fatal(err)
	}
	if k := c.KeySource(); c.MasterKeyFile != "" || k.kind != keyCredential {
		t.Errorf("master_key_file = %q, source %v; want empty and the credential", c.MasterKeyFile, k)
	}
}

func TestCredentialErrors(t *testing.T) {
	isolateCredentials(t)
	credDir := t.TempDir()
	t.Setenv("CREDENTIALS_DIRECTORY", credDir)
	c := Defaults()
	c.Data = t.TempDir()
	for _, tc := range []struct{ name, text, want string }{
		{"not base64", "s3cret-not-base64!\n", "systemd credential master.key: master key 1: not base64"},
		{"short", key16, "systemd credential master.key: master key 1: 16 bytes, want 32"},
		{"empty", "# nothing\n", "systemd credential master.key: no master key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			writeFile(t, filepath.Join(credDir, credentialName), tc.text, 0o400)
			_, err := c.loadSealer()
			if err == nil || err.Error() != tc.want {
				t.Fatalf("loadSealer = %v, want %q", err, tc.want)
			}
			if _, err := os.Stat(filepath.Join(c.Data, "master.key")); err == nil {
				t.Errorf("a bad credential fell back to a new key file in the data directory")
			}
		})
	}
}

func TestMasterKeyWarnings(t *testing.T) {
	inData := "sits in the data directory beside the database"
	stale := "still sits in the data directory"
	tests := []struct {
		name string
		set  func(t *testing.T, c *Config, credStore string)
		want string // "" for no warning
	}{
		{name: "default: key file in the data directory", want: inData},
		{name: "master_key_file pointed into the data directory", set: func(t *testing.T, c *Config, _ string) {
			c.MasterKeyFile = filepath.Join(c.Data, "keys", "k")
		}, want: inData},
		{name: "master_key_file elsewhere", set: func(t *testing.T, c *Config, _ string) {
			c.MasterKeyFile = "/etc/totpbox/master.key"
		}},
		{name: "data directory spelled differently", set: func(t *testing.T, c *Config, _ string) {
			c.MasterKeyFile = c.Data + "/./sub/../master.key"
		}, want: inData},
		{name: "sibling directory with a common prefix", set: func(t *testing.T, c *Config, _ string) {
			c.MasterKeyFile = c.Data + "-keys/master.key"
		}},
		{name: "master key in a variable", set: func(t *testing.T, c *Config, _ string) { c.MasterKey = key32 }},
		{name: "PostgreSQL: the database is elsewhere", set: func(t *testing.T, c *Config, _ string) {
			c.Database.DSN = "postgres://db/totp"
		}},
		{name: "credential in the service's environment", set: func(t *testing.T, c *Config, _ string) {
			d := t.TempDir()
			writeFile(t, filepath.Join(d, credentialName), key32, 0o400)
			t.Setenv("CREDENTIALS_DIRECTORY", d)
		}},
		{name: "credential in the store for the packaged unit", set: func(t *testing.T, c *Config, credStore string) {
			writeFile(t, filepath.Join(credStore, credStoreName), "encrypted", 0o600)
		}},
		{name: "credential, and the old key file left behind", set: func(t *testing.T, c *Config, credStore string) {
			writeFile(t, filepath.Join(credStore, credStoreName), "encrypted", 0o600)
			writeFile(t, filepath.Join(c.Data, "master.key"), key32, 0o600)
		}, want: stale},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			credStore := isolateCredentials(t)
			c := Defaults()
			c.Data = t.TempDir()
			if tc.set != nil {
				tc.set(t, &c, credStore)
			}
			got := c.MasterKeyWarnings()
			switch {
			case tc.want == "" && len(got) != 0:
				t.Errorf("MasterKeyWarnings() = %q, want none", got)
			case tc.want != "" && (len(got) != 1 || !strings.Contains(got[0], tc.want)):
				t.Errorf("MasterKeyWarnings() = %q, want one with %q", got, tc.want)
			}
			for _, w := range got {
				if strings.Contains(w, key32) || strings.Contains(w, "\n") {
					t.Errorf("warning %q shows a key or spans lines", w)
				}
			}
		})
	}
}

// base64Key returns the base64 of a 32-byte key filled with b.
func base64Key(b byte) string {
	return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{b}, 32))
}

// Master keys: base64 of 32 bytes (two of them) and of 16 bytes.
var (
	key32  = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x5a}, 32))
	key32b = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xa5}, 32))
	key16  = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x3c}, 16))
)

// TestSecondReplicaRefusesItsOwnKey is two replicas, each with its own data
// directory, started against one empty database: the first makes the
// master key and the database is bound to it; the second, whose key file
// does not exist, refuses to start (and makes no key), and so does one
// that made its own key meanwhile. A rotation (a new primary key holding
// the first as an old one) moves the binding on.
func TestSecondReplicaRefusesItsOwnKey(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) store.Store) {
		isolateCredentials(t)
		st := open(t)
		ctx := t.Context()
		replica := func() Config {
			c := Defaults()
			c.Data = t.TempDir()
			return c
		}
		first := replica()
		s1, err := first.LoadSealerFor(ctx, st)
		if err != nil {
			t.Fatalf("first replica on an empty database: %v", err)
		}
		second := replica()
		_, err = second.LoadSealerFor(ctx, st)
		if err == nil || !strings.Contains(err.Error(), s1.PrimaryKeyID()) {
			t.Fatalf("second replica with no key file: %v, want a refusal naming key %s", err, s1.PrimaryKeyID())
		}
		if _, err := os.Stat(filepath.Join(second.Data, "master.key")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("the refusing replica made a key file: %v", err)
		}
		// A replica that made its own key before the first one started.
		racer := replica()
		if _, err := store.LoadSealer(filepath.Join(racer.Data, "master.key"), ""); err != nil {
			t.Fatal(err)
		}
		if _, err := racer.LoadSealerFor(ctx, st); err == nil || !strings.Contains(err.Error(), s1.PrimaryKeyID()) {
			t.Fatalf("replica with a key of its own: %v, want a refusal naming key %s", err, s1.PrimaryKeyID())
		}
		// The first replica starts again, and after a rotation.
		if _, err := first.LoadSealerFor(ctx, st); err != nil {
			t.Fatalf("first replica again: %v", err)
		}
		old, _ := os.ReadFile(filepath.Join(first.Data, "master.key"))
		rotated := replica()
		rotated.MasterKey = base64Key(7) + "\n" + strings.TrimSpace(string(old))
		s2, err := rotated.LoadSealerFor(ctx, st)
		if err != nil {
			t.Fatalf("rotated keys holding the first: %v", err)
		}
		rotated.MasterKey = base64Key(7)
		if _, err := rotated.LoadSealerFor(ctx, st); err != nil {
			t.Fatalf("the new key alone after the rotation: %v", err)
		}
		if _, err := first.LoadSealerFor(ctx, st); err == nil || !strings.Contains(err.Error(), s2.PrimaryKeyID()) {
			t.Errorf("the old key alone after the rotation: %v, want a refusal naming key %s", err, s2.PrimaryKeyID())
		}
	})
}
