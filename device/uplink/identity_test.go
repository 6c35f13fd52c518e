package uplink

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/totpbox/totpbox/device/tpm/tpmtest"
)

// TestIdentitySealedToTPM: in TPM mode the identity file holds only a
// blob sealed to the TPM; a plain identity is sealed in place keeping its
// keys; a copy opened with another TPM is refused in one line, and
// without a TPM too.
func TestIdentitySealedToTPM(t *testing.T) {
	d := tpmtest.Open(t, "")
	dir := t.TempDir()
	plain, err := loadIdentity(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, IdentityFile)
	sealed, err := loadIdentity(dir, d)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sealed.signPub(), plain.signPub()) || *sealed.boxPub != *plain.boxPub {
		t.Fatal("sealing the identity in place changed its keys")
	}
	b, _ := os.ReadFile(path)
	var j identityJSON
	if err := json.Unmarshal(b, &j); err != nil || j.TPMSealed == nil || j.SignSeed != nil || j.BoxPrivate != nil {
		t.Fatalf("identity file after sealing: %s", b)
	}
	if bytes.Contains(b, plain.sign.Seed()) || bytes.Contains(b, plain.boxPriv[:]) {
		t.Fatal("identity file holds a private key in clear")
	}
	again, err := loadIdentity(dir, d)
	if err != nil || !bytes.Equal(again.signPub(), plain.signPub()) {
		t.Fatalf("reloading the sealed identity: %v", err)
	}

	other := tpmtest.Open(t, "")
	_, err = loadIdentity(dir, other)
	if err == nil || !strings.Contains(err.Error(), "sealed to a different TPM") || strings.Contains(err.Error(), "\n") {
		t.Errorf("identity on another TPM: %v", err)
	}
	if _, err := loadIdentity(dir, nil); err == nil || !strings.Contains(err.Error(), "no TPM is in use") {
		t.Errorf("sealed identity without a TPM: %v", err)
	}

	fresh := t.TempDir()
	if _, err := loadIdentity(fresh, d); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(filepath.Join(fresh, IdentityFile))
	if err := json.Unmarshal(b, &j); err != nil || j.TPMSealed == nil || j.SignSeed != nil {
		t.Errorf("new identity in TPM mode: %s", b)
	}
}
