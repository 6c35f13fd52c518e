package system

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/totpbox/totpbox/device/tpm/tpmtest"
)

// TestSimulatorTPM runs a standalone simulated appliance with its swtpm:
// it comes up in TPM mode with its demo accounts held in the TPM; its
// data directory copied and run with another TPM state (the SD card in
// another board) refuses to start with the one-line message; the
// original starts again.
func TestSimulatorTPM(t *testing.T) {
	tpmtest.Require(t)
	data, tpms := t.TempDir(), t.TempDir()
	cfg := Config{Listen: "127.0.0.1:0", NoServer: true, DataDir: data, TPMDir: tpms}
	r := boot(t, cfg)
	a := r.s.Appliances()[0]
	if a.Secrets() != "tpm" {
		t.Fatalf("secrets = %s, want tpm", a.Secrets())
	}
	accts := a.Vault().List()
	if len(accts) == 0 {
		t.Fatal("no demo accounts")
	}
	for _, acct := range accts {
		if acct.Key.Algorithm.String() != "SHA512" && !acct.InTPM {
			t.Errorf("demo account %s (%v) is not in the TPM", acct.Name(), acct.Key.Algorithm)
		}
	}
	r.stop()

	copied := t.TempDir()
	if err := os.CopyFS(copied, os.DirFS(data)); err != nil {
		t.Fatal(err)
	}
	_, err := New(Config{Listen: "127.0.0.1:0", NoServer: true, DataDir: copied, TPMDir: filepath.Join(t.TempDir(), "other")})
	if err == nil || !strings.Contains(err.Error(), "sealed to a different TPM") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("the copy with another TPM: %v", err)
	}
	r = boot(t, cfg)
	if got := r.s.Appliances()[0].Secrets(); got != "tpm" {
		t.Errorf("original after the copy: secrets %s", got)
	}
	r.stop()
}
