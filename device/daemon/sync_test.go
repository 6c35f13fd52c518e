package daemon

import (
	"context"
	"github.com/totpbox/totpbox/internal/testkit"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/totpbox/totpbox/device/localapi"
	"github.com/totpbox/totpbox/enroll/server"
	"github.com/totpbox/totpbox/enroll/store"
)

// TestRunPairsAndServesLocalAPI runs totpd with a registration server: the
// appliance asks for a pairing code, the local API (what totpctl pair and
// status read) shows it, the admin enters it, and the appliance reports
// itself paired with its clock; local accounts added over the socket stay
// local.
func TestRunPairsAndServesLocalAPI(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "master.key")
	if err := store.NewKeyFile(keyFile); err != nil {
		t.Fatal(err)
	}
	sealer, err := store.LoadSealer(keyFile, "")
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.OpenSQLite(ctx, filepath.Join(dir, "server.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	srv, err := server.New(server.Config{Store: st, Sealer: sealer})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()

	e := newEmulated(t, "TOTPDSYNC")
	cfg := e.config(t, "server:\n  url: "+hs.URL+"\n")
	cfg.Version = "test-1"
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- Run(runCtx, cfg, cfg.NewLogger(os.Stderr)) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run() = %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("Run did not stop")
		}
	}()

	api := localapi.NewClient(filepath.Join(e.state, "totpd.sock"))
	var pairing struct {
		Paired      bool   `json:"paired"`
		PairingCode string `json:"pairing_code"`
		Name        string `json:"name"`
	}
	testkit.WaitFor(t, 20*time.Second, "pairing code on the local API", func() bool {
		return api.Do(ctx, "GET", "/v1/pairing", nil, &pairing) == nil && pairing.PairingCode != ""
	})
	if _, err := srv.Appliances().Pair(ctx, pairing.PairingCode, "Lobby kiosk 3"); err != nil {
		t.Fatalf("Pair(code from the appliance) = %v", err)
	}
	testkit.WaitFor(t, 20*time.Second, "appliance paired", func() bool {
		return api.Do(ctx, "GET", "/v1/pairing", nil, &pairing) == nil && pairing.Paired
	})
	if pairing.Name != "Lobby kiosk 3" {
		t.Errorf("appliance knows itself as %q, want Lobby kiosk 3", pairing.Name)
	}
	// The server records the appliance's version and clock report.
	testkit.WaitFor(t, 20*time.Second, "clock report on the server", func() bool {
		infos, err := srv.Appliances().Appliances(ctx)
		return err == nil && len(infos) == 1 && infos[0].Version == "test-1" && infos[0].Clock != nil
	})

	var status map[string]any
	if err := api.Do(ctx, "GET", "/v1/status", nil, &status); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"clock", "appliance", "sync"} {
		if status[k] == nil {
			t.Errorf("status lacks %q: %v", k, status)
		}
	}
	var a localapi.Account
	if err := api.Do(ctx, "POST", "/v1/accounts", localapi.AddRequest{URI: "otpauth://totp/AWS:bob?secret=JBSWY3DPEHPK3PXP"}, &a); err != nil {
		t.Fatal(err)
	}
	if a.Source != "local" {
		t.Errorf("account added over the socket has source %q, want local", a.Source)
	}
}
