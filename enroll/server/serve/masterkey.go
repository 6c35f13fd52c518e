package serve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/totpbox/totpbox/enroll/store"
)

// The server looks for its master key(s) in this order:
//
//  1. master_key (TOTPSERVER_MASTER_KEY): the keys themselves;
//  2. master_key_file, when set;
//  3. the systemd credential master.key, $CREDENTIALS_DIRECTORY/master.key:
//     the packaged unit loads it with LoadCredentialEncrypted= from
//     /etc/credstore.encrypted/totpserver-master.key when that file
//     exists, decrypted by systemd (with the host's TPM where there is
//     one), so no plain key needs to lie on the data disk;
//  4. <data>/master.key, created on first start.

// credentialName is the systemd credential holding the master key(s).
const credentialName = "master.key"

// credStoreName is the file name, in systemd's credential store
// directories, that the packaged unit loads as credentialName.
const credStoreName = "totpserver-master.key"

// CredStoreDirs are the directories systemd searches for a credential
// named by LoadCredentialEncrypted= without a path; config check looks
// there to tell that the packaged unit will find the master key.
var CredStoreDirs = []string{
	"/run/credstore.encrypted", "/etc/credstore.encrypted", "/usr/lib/credstore.encrypted",
	"/run/credstore", "/etc/credstore", "/usr/lib/credstore",
}

// maxCredential bounds the credential file, as store bounds key files.
const maxCredential = 64 << 10

// keyKind says where the master key comes from.
type keyKind int

const (
	keyNone       keyKind = iota // nowhere: no key, no file, no data directory
	keyVariable                  // master_key
	keyFile                      // a key file, created when missing
	keyCredential                // the systemd credential
)

// KeySource is where the server reads its master key.
type KeySource struct {
	kind keyKind
	path string // the file, for keyFile and keyCredential
}

func (k KeySource) String() string {
	switch k.kind {
	case keyVariable:
		return "master_key (TOTPSERVER_MASTER_KEY)"
	case keyFile:
		return "file " + k.path
	case keyCredential:
		return "systemd credential " + credentialName + " (" + k.path + ")"
	}
	return "none"
}

// credentialFile returns $CREDENTIALS_DIRECTORY/master.key when the
// environment names a credentials directory holding it, else "".
func credentialFile() string {
	dir := os.Getenv("CREDENTIALS_DIRECTORY")
	if dir == "" {
		return ""
	}
	p := filepath.Join(dir, credentialName)
	if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
		return ""
	}
	return p // unreadable: loadSealer says why
}

// KeySource returns where the master key comes from, in the order above.
func (c Config) KeySource() KeySource {
	switch {
	case strings.TrimSpace(c.MasterKey) != "":
		return KeySource{kind: keyVariable}
	case c.MasterKeyFile != "":
		return KeySource{kind: keyFile, path: c.MasterKeyFile}
	}
	if p := credentialFile(); p != "" {
		return KeySource{kind: keyCredential, path: p}
	}
	if c.Data != "" {
		return KeySource{kind: keyFile, path: filepath.Join(c.Data, "master.key")}
	}
	return KeySource{}
}

// LoadSealerFor is loadSealer for a server starting on st: it never
// creates a key file when st holds sealed secrets, and it refuses, in one
// line naming the key id and where keys were looked for, when st holds
// secrets sealed with a key the sealer lacks (store.LoadSealerFor).
func (c Config) LoadSealerFor(ctx context.Context, st store.SealedKeys) (*store.Sealer, error) {
	k := c.KeySource()
	switch k.kind {
	case keyVariable:
		return store.LoadSealerFor(ctx, st, "", c.MasterKey)
	case keyFile:
		return store.LoadSealerFor(ctx, st, k.path, "")
	}
	s, err := c.loadSealer()
	if err != nil {
		return nil, err
	}
	if err := store.RequireKeys(ctx, st, s, k.String()); err != nil {
		return nil, err
	}
	return s, nil
}

// loadSealer reads the master key(s) from where masterKey says. Errors
// name the source and a key's position, never a key.
func (c Config) loadSealer() (*store.Sealer, error) {
	k := c.KeySource()
	switch k.kind {
	case keyVariable:
		return store.LoadSealer("", c.MasterKey)
	case keyFile:
		return store.LoadSealer(k.path, "")
	case keyCredential:
		// Not store.LoadSealer: systemd owns the file and its directory,
		// readable by this service alone (the group bits may show an ACL
		// mask), and it is never created here.
		f, err := os.Open(k.path)
		if err != nil {
			return nil, fmt.Errorf("systemd credential %s: %v", credentialName, err)
		}
		defer f.Close()
		b, err := io.ReadAll(io.LimitReader(f, maxCredential+1))
		if err == nil && len(b) > maxCredential {
			err = fmt.Errorf("larger than %d bytes", maxCredential)
		}
		if err != nil {
			return nil, fmt.Errorf("systemd credential %s: %v", credentialName, err)
		}
		keys, err := store.ParseKeys(string(b))
		if err != nil {
			return nil, fmt.Errorf("systemd credential %s: %v", credentialName, err)
		}
		s, err := store.NewSealer(keys[0], keys[1:]...)
		if err != nil {
			return nil, fmt.Errorf("systemd credential %s: %v", credentialName, err)
		}
		return s, nil
	}
	return store.LoadSealer("", "")
}

// credStoreFile returns the credential store file the packaged unit would
// load as the master key, or "" when there is none (or it cannot be seen).
func credStoreFile() string {
	for _, d := range CredStoreDirs {
		p := filepath.Join(d, credStoreName)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p
		}
	}
	return ""
}

// inDir reports whether path lies in dir or below it.
func inDir(dir, path string) bool {
	if dir == "" || path == "" {
		return false
	}
	dir, _ = filepath.Abs(dir)
	path, _ = filepath.Abs(path)
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// MasterKeyWarnings returns what config check warns about where the master
// key lies: in the data directory beside the SQLite database, whoever
// copies the disk or a backup of it has both the secrets and their key.
func (c Config) MasterKeyWarnings() []string {
	if c.Database.DSN != "" || c.Data == "" {
		return nil // the database is elsewhere
	}
	k := c.KeySource()
	stale := filepath.Join(c.Data, "master.key")
	if k.kind == keyFile && k.path == stale && c.MasterKeyFile == "" {
		if p := credStoreFile(); p != "" {
			// The packaged unit will load the credential instead.
			k = KeySource{kind: keyCredential, path: p}
		}
	}
	switch {
	case k.kind == keyFile && inDir(c.Data, k.path):
		return []string{fmt.Sprintf("warning: master key file %s sits in the data directory beside the database, "+
			"so a copy of the disk holds the secrets and their key; move it into a systemd credential: "+
			"systemd-creds encrypt --name=%s %s /etc/credstore.encrypted/%s (see totpserver(8))",
			k.path, credentialName, k.path, credStoreName)}
	case k.kind == keyCredential:
		if _, err := os.Stat(stale); err == nil {
			return []string{fmt.Sprintf("warning: %s still sits in the data directory although the master key comes from "+
				"the systemd credential %s (%s): remove it once totpserver has started with the credential", stale, credentialName, k.path)}
		}
	}
	return nil
}
