package daemon

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/totpbox/totpbox/device/tpm/tpmtest"
	"github.com/totpbox/totpbox/device/vault"
	"github.com/totpbox/totpbox/enroll"
)

// TestVaultOptionsFinishCutMigration: after `totpctl secrets migrate`
// was cut short (the new key file sealed to the TPM still beside the
// software key file), totpd in the auto and tpm modes opens the vault
// with the TPM, which finishes the migration with every account
// (issue 22, item 6).
func TestVaultOptionsFinishCutMigration(t *testing.T) {
	addr := tpmtest.Start(t, "")
	for _, mode := range []string{SecretsAuto, SecretsTPM} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			keyFile := filepath.Join(dir, vault.KeyFileName)
			v, err := vault.Open(dir, vault.Config{})
			if err != nil {
				t.Fatal(err)
			}
			k, err := enroll.NewKey("Example", "fay@example.com")
			if err != nil {
				t.Fatal(err)
			}
			a, err := v.Add(vault.Account{Key: k, State: vault.Active})
			if err != nil {
				t.Fatal(err)
			}
			want := enroll.CodeAt(k, 99)
			oldKey, _ := os.ReadFile(keyFile)
			before, _ := os.ReadFile(filepath.Join(dir, vault.VaultFileName))
			s, err := OpenSecrets(SecretsAuto, addr, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := v.MigrateToTPM(s.tpm); err != nil {
				t.Fatal(err)
			}
			v.Close()
			s.tpm.Close()
			// The state of a cut before the vault was rewritten.
			newKey, _ := os.ReadFile(keyFile)
			if bytes.Equal(newKey, oldKey) {
				t.Fatal("the migration left the key file as it was")
			}
			os.WriteFile(keyFile+".new", newKey, 0o600)
			os.WriteFile(keyFile, oldKey, 0o600)
			os.WriteFile(filepath.Join(dir, vault.VaultFileName), before, 0o600)

			s, err = OpenSecrets(mode, addr, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer s.tpm.Close()
			opts, err := s.VaultOptions(vault.Config{}, keyFile)
			if err != nil {
				t.Fatalf("VaultOptions(%s) after a cut migration: %v", mode, err)
			}
			if opts.TPM == nil || s.Mode() != SecretsTPM {
				t.Fatalf("VaultOptions(%s) after a cut migration: no TPM, mode %s", mode, s.Mode())
			}
			v, err = vault.Open(dir, opts)
			if err != nil {
				t.Fatalf("Open(%s) after a cut migration: %v", mode, err)
			}
			got, err := v.Get(a.ID)
			if err != nil {
				t.Fatal(err)
			}
			if c, err := got.CodeAt(99); err != nil || c != want || !got.InTPM {
				t.Errorf("account after the migration finished: code %s, %v, in TPM %v; want %s in the TPM", c, err, got.InTPM, want)
			}
			v.Close()
			if kind, err := vault.KeyFileKind(keyFile); err != nil || kind != vault.KeyTPM {
				t.Errorf("key file %v, %v, want tpm", kind, err)
			}
		})
	}
}
