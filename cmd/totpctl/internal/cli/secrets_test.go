package cli

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/totpbox/totpbox/device/localapi"
	"github.com/totpbox/totpbox/device/tpm/tpmtest"
	"github.com/totpbox/totpbox/device/vault"
	"github.com/totpbox/totpbox/enroll"
)

// TestSecretsMigrate runs `totpctl secrets migrate` against a local API
// whose vault is in software mode and a swtpm: the key file ends sealed
// to the TPM, the active account is held there, and the command says so;
// a second run is refused as bad input, in one line.
func TestSecretsMigrate(t *testing.T) {
	d := tpmtest.Open(t, "")
	dir := t.TempDir()
	v, err := vault.Open(filepath.Join(dir, "vault"), vault.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	k, _ := enroll.NewKey("AWS", "alice")
	if _, err := v.Add(vault.Account{Key: k, State: vault.Active}); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "totpd.sock")
	ln, err := localapi.Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	b := &localapi.Backend{Vault: v, MigrateSecrets: func() (any, error) {
		if err := v.MigrateToTPM(d); err != nil {
			return nil, err
		}
		var in []string
		for _, a := range v.List() {
			if a.InTPM {
				in = append(in, a.Name())
			}
		}
		return map[string]any{"mode": "tpm", "tpm": "swtpm", "in_tpm": in}, nil
	}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { localapi.Serve(ctx, ln, b.Handler()); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	r := run(t, "", "secrets", "migrate", "--socket="+sock)
	if r.status != 0 || !strings.Contains(r.stdout, "tpm (swtpm)") || !strings.Contains(r.stdout, "in TPM:") || !strings.Contains(r.stdout, "AWS: alice") {
		t.Fatalf("secrets migrate = %+v", r)
	}
	if kind, _ := vault.KeyFileKind(filepath.Join(dir, "vault", vault.KeyFileName)); kind != vault.KeyTPM {
		t.Errorf("key file after migrate: %v", kind)
	}
	checkBadInput(t, run(t, "", "secrets", "migrate", "--socket="+sock), "already sealed to the TPM")
}
