package cli

import (
	"context"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/boombuler/barcode"
	"github.com/boombuler/barcode/qr"

	"github.com/totpbox/totpbox/device/localapi"
	"github.com/totpbox/totpbox/device/vault"
)

// startDaemonAPI serves the local API of a fresh vault on a temp socket.
func startDaemonAPI(t *testing.T) (string, *vault.Vault) {
	t.Helper()
	dir := t.TempDir()
	v, err := vault.Open(filepath.Join(dir, "vault"), vault.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	sock := filepath.Join(dir, "totpd.sock")
	ln, err := localapi.Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &localapi.Backend{Vault: v, Status: func() any {
		return map[string]any{"clock": map[string]any{"state": "SYNCED", "bound_s": 0.002, "frequency_ppm": 12.5,
			"servers": []any{map[string]any{"address": "127.0.0.1:123", "offset_s": 0.001, "delay_s": 0.0002, "reach": 255, "selected": true}}}}
	}}
	done := make(chan struct{})
	go func() { localapi.Serve(ctx, ln, b.Handler()); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return sock, v
}

func writeQR(t *testing.T, text string) string {
	t.Helper()
	code, err := qr.Encode(text, qr.M, qr.Auto)
	if err != nil {
		t.Fatal(err)
	}
	code, _ = barcode.Scale(code, 300, 300)
	p := filepath.Join(t.TempDir(), "qr.png")
	f, _ := os.Create(p)
	defer f.Close()
	if err := png.Encode(f, code); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestAccountCommands(t *testing.T) {
	sock, v := startDaemonAPI(t)
	s := "--socket=" + sock
	const uri = "otpauth://totp/AWS:alice?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=AWS"

	if r := run(t, "", "account", "add", s, uri); r.status != 0 || !strings.Contains(r.stdout, "added") {
		t.Fatalf("account add URI = %+v", r)
	}
	if r := run(t, "JBSWY3DPEHPK3PXP\n", "account", "add", s, "--secret", "-", "--issuer", "Site", "--name", "bob"); r.status != 0 {
		t.Fatalf("account add --secret - = %+v", r)
	}
	qrPath := writeQR(t, "otpauth://totp/Shop:carol?secret=KRSXG5CTMVRXEZLU&issuer=Shop")
	if r := run(t, "", "account", "add", s, "--qr", qrPath, "--label", "Shop till"); r.status != 0 {
		t.Fatalf("account add --qr = %+v", r)
	}
	if v.Len() != 3 {
		t.Fatalf("vault holds %d accounts, want 3", v.Len())
	}
	r := run(t, "", "account", "list", s)
	for _, want := range []string{"AWS: alice", "Site: bob", "Shop till", "local"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("account list lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "JBSWY3DP") {
		t.Error("account list shows a secret")
	}
	id := v.List()[0].ID
	if r := run(t, "", "account", "rename", s, id, "AWS prod"); r.status != 0 {
		t.Fatalf("rename = %+v", r)
	}
	if got, _ := v.Get(id); got.Label != "AWS prod" {
		t.Errorf("label after rename = %q", got.Label)
	}
	if r := run(t, "", "account", "remove", s, id); r.status != 0 {
		t.Fatalf("remove = %+v", r)
	}
	if v.Len() != 2 {
		t.Errorf("vault holds %d after remove, want 2", v.Len())
	}

	checkBadInput(t, run(t, "", "account", "add", s), "exactly one")
	checkBadInput(t, run(t, "", "account", "add", s, "otpauth://hotp/x?secret=JBSWY3DPEHPK3PXP"), "hotp")
	checkBadInput(t, run(t, "", "account", "remove", s, "nope"), "no account")
	checkBadInput(t, run(t, "", "account", "add", s, "--qr", writeQR(t, "https://example.com")), "no otpauth URI")
	checkBadInput(t, run(t, "", "account", "add", s, "--qr", filepath.Join(t.TempDir(), "none.png")), "--qr")
}

func TestStatusAndUnreachableDaemon(t *testing.T) {
	sock, _ := startDaemonAPI(t)
	r := run(t, "", "status", "--socket", sock)
	if r.status != 0 || !strings.Contains(r.stdout, "SYNCED") || !strings.Contains(r.stdout, "selected") {
		t.Fatalf("status = %+v", r)
	}
	r = run(t, "", "status", "--socket", filepath.Join(t.TempDir(), "gone.sock"))
	if r.status != ExitFailure || !strings.Contains(r.stderr, "cannot reach totpd") {
		t.Fatalf("status with no daemon = %+v, want exit 1 and a clear message", r)
	}
}
