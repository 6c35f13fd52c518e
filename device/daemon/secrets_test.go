package daemon

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/totpbox/totpbox/device/localapi"
	"github.com/totpbox/totpbox/device/tpm/tpmtest"
	"github.com/totpbox/totpbox/device/vault"
)

// startTotpd runs totpd with cfg until the test ends or stop is called,
// and returns its local API client.
func startTotpd(t *testing.T, cfg Config) (c *localapi.Client, stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, cfg.NewLogger(os.Stderr)) }()
	c = localapi.NewClient(cfg.socket())
	stopped := false
	stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(10 * time.Second):
			return errors.New("Run did not return within 10 s")
		}
	}
	t.Cleanup(func() { stop() })
	waitFor(t, 20*time.Second, "totpd's local API", func() bool {
		select {
		case err := <-done:
			done <- err
			return true
		default:
		}
		var st map[string]any
		return c.Do(context.Background(), "GET", "/v1/status", nil, &st) == nil
	})
	return c, stop
}

func secretsStatus(t *testing.T, c *localapi.Client) map[string]any {
	t.Helper()
	var st map[string]any
	if err := c.Do(context.Background(), "GET", "/v1/status", nil, &st); err != nil {
		t.Fatal(err)
	}
	s, _ := st["secrets"].(map[string]any)
	return s
}

// TestSecretsMigrateOnEmulatedHardware: a software-mode appliance with a
// TPM fitted (swtpm) runs in software mode and says so; one migrate moves
// it to TPM mode; it restarts in TPM mode; a copy of its state directory
// on another board (another swtpm) refuses to start, in one line, and the
// original still starts.
func TestSecretsMigrateOnEmulatedHardware(t *testing.T) {
	addr := tpmtest.Start(t, "")
	e := newEmulated(t, "TOTPDTPM")
	cfg := e.config(t, "secrets: auto\ntpm:\n  device: "+addr+"\n")
	c, stop := startTotpd(t, cfg)
	s := secretsStatus(t, c)
	if s["mode"] != "software" || !strings.Contains(s["warning"].(string), "a copy of the SD card copies every account") {
		t.Fatalf("status before migrating: %v", s)
	}
	var after map[string]any
	if err := c.Do(context.Background(), "POST", "/v1/secrets/migrate", nil, &after); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	if after["mode"] != "tpm" || len(after["in_tpm"].([]any)) != 1 {
		t.Fatalf("status after migrating: %v", after)
	}
	if err := c.Do(context.Background(), "POST", "/v1/secrets/migrate", nil, &after); err == nil || !strings.Contains(err.Error(), "already") {
		t.Errorf("second migrate: %v", err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if k, _ := vault.KeyFileKind(filepath.Join(e.state, "vault", vault.KeyFileName)); k != vault.KeyTPM {
		t.Fatalf("key file after migrate: %v", k)
	}

	c, stop = startTotpd(t, cfg)
	if s := secretsStatus(t, c); s["mode"] != "tpm" {
		t.Fatalf("status after restart: %v", s)
	}
	var accts []localapi.Account
	if err := c.Do(context.Background(), "GET", "/v1/accounts", nil, &accts); err != nil || len(accts) != 1 || !accts[0].InTPM {
		t.Fatalf("accounts after restart: %+v, %v", accts, err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	// The SD card in another board.
	copyState := t.TempDir()
	if err := os.CopyFS(copyState, os.DirFS(e.state)); err != nil {
		t.Fatal(err)
	}
	other := cfg
	other.StateDir = copyState
	other.TPM.Device = tpmtest.Start(t, "")
	err := Run(context.Background(), other, cfg.NewLogger(os.Stderr))
	if err == nil || !strings.Contains(err.Error(), "sealed to a different TPM") || !strings.Contains(err.Error(), "pair this appliance again") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("totpd on a copy with another TPM: %v", err)
	}
	c, stop = startTotpd(t, cfg)
	if s := secretsStatus(t, c); s["mode"] != "tpm" {
		t.Fatalf("original after the copy was refused: %v", s)
	}
	stop()
}
