package system

import (
	"github.com/totpbox/totpbox/enroll/server/api"

	"context"
	"encoding/json"
	"fmt"
	"github.com/totpbox/totpbox/internal/testkit"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/totpbox/totpbox/device/vault"
)

// running is one start of the simulator, stopped by stop.
type running struct {
	s    *System
	sim  *httptest.Server
	stop func()
}

func boot(t *testing.T, cfg Config) running {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	sim := httptest.NewServer(s.Handler())
	return running{s: s, sim: sim, stop: func() {
		sim.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run() = %v", err)
		}
	}}
}

func serverAccounts(v *vault.Vault) []vault.Account {
	var out []vault.Account
	for _, a := range v.List() {
		if !a.IsLocal() {
			out = append(out, a)
		}
	}
	return out
}

// TestRestartsLoseNothing stops the whole system — server and appliance —
// between the offer and OK, and again between OK and the confirming code:
// each time it comes back with the offer, then the pending account, exactly
// once, and the registration completes.
func TestRestartsLoseNothing(t *testing.T) {
	cfg := Config{Listen: "127.0.0.1:0", ServerListen: testkit.FreeAddr(t), DataDir: t.TempDir()}
	r := boot(t, cfg)
	testkit.WaitFor(t, 10*time.Second, "the simulator to get there", func() bool { st := getState(t, r.sim.URL+"/sim/state"); return st.Sync != nil && st.Sync.Paired })
	token, err := api.CreateToken(context.Background(), r.s.server.store, "restart-test")
	if err != nil {
		t.Fatal(err)
	}
	api := apiClient{t: t, base: r.s.server.URL(), token: token}
	if code := api.do("POST", "/api/v1/users", map[string]string{"username": "bob"}, nil); code != 201 {
		t.Fatalf("create user = %d", code)
	}
	var created struct {
		ID json.Number `json:"id"`
	}
	if code := api.do("POST", "/api/v1/users/bob/mfa-devices", map[string]string{"name": "Till 2", "appliance": "Simulated appliance 0"}, &created); code != 201 {
		t.Fatalf("register with appliance = %d", code)
	}
	testkit.WaitFor(t, 10*time.Second, "the simulator to get there", func() bool { return getState(t, r.sim.URL+"/sim/state").View == "offer" })

	// Restart between the offer and OK: the offer comes back.
	r.stop()
	r = boot(t, cfg)
	testkit.WaitFor(t, 10*time.Second, "the simulator to get there", func() bool { return getState(t, r.sim.URL+"/sim/state").View == "offer" })
	if st := pressOfferSequence(t, r.sim, api, "bob", created.ID.String()); st.View != "qr" {
		t.Fatalf("after the sequence the view is %q, want qr", st.View)
	}
	testkit.WaitFor(t, 10*time.Second, "the simulator to get there", func() bool { return len(serverAccounts(r.s.appliances[0].Vault())) == 1 })

	// Restart between OK and the code: still one pending account, no offer.
	r.stop()
	r = boot(t, cfg)
	defer func() { r.stop() }()
	testkit.WaitFor(t, 10*time.Second, "the simulator to get there", func() bool { return getState(t, r.sim.URL+"/sim/state").TimeState == "SYNCED" })
	accts := serverAccounts(r.s.appliances[0].Vault())
	if len(accts) != 1 || accts[0].State != vault.Pending {
		t.Fatalf("after the restart the appliance holds %v, want one pending account", accts)
	}
	if st := getState(t, r.sim.URL+"/sim/state"); st.OfferPending {
		t.Fatal("the accepted offer is shown again after the restart")
	}
	st := getState(t, r.sim.URL+"/sim/state")
	for st.AccountID != accts[0].ID {
		st = pressButton(t, r.sim, "next")
	}
	st = getState(t, r.sim.URL+"/sim/state")
	if !st.CodeShown || st.Code == "" {
		t.Fatalf("the pending account shows no code: %+v", st.Status)
	}
	api.base = r.s.server.URL()
	path := fmt.Sprintf("/api/v1/users/bob/mfa-devices/%s/confirm", created.ID)
	if code := api.do("POST", path, map[string]any{"codes": []string{st.Code}}, nil); code != 200 {
		t.Fatalf("confirm with the appliance's code after two restarts = %d", code)
	}
	testkit.WaitFor(t, 10*time.Second, "the simulator to get there", func() bool {
		a, err := r.s.appliances[0].Vault().Get(accts[0].ID)
		return err == nil && a.State == vault.Active
	})
	if n := len(serverAccounts(r.s.appliances[0].Vault())); n != 1 {
		t.Fatalf("appliance holds %d server accounts, want 1", n)
	}
}
