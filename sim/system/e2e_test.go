package system

import (
	"github.com/totpbox/totpbox/enroll/server/api"

	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/totpbox/totpbox/internal/testkit"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/totpbox/totpbox/device/vault"
	"github.com/totpbox/totpbox/enroll"
)

// apiClient calls the registration server's admin API with a bearer token.
type apiClient struct {
	t     *testing.T
	tb    testing.TB // used when t is nil (benchmarks)
	base  string
	token string
}

func (c apiClient) do(method, path string, in any, out any) int {
	var t testing.TB = c.t
	if c.t == nil {
		t = c.tb
	}
	t.Helper()
	var body io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, c.base+path, body)
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %d %s: %v", method, path, resp.StatusCode, b, err)
		}
	}
	return resp.StatusCode
}

// pressOfferSequence presses OK on the offer the simulator shows, then
// the button sequence the admin API lists for the offer of user's MFA
// device id; it returns the state after the last press.
func pressOfferSequence(t *testing.T, sim *httptest.Server, api apiClient, user, id string) State {
	t.Helper()
	var list struct {
		MFADevices []struct {
			ID    json.Number `json:"id"`
			Offer *struct {
				Sequence []string `json:"sequence"`
			} `json:"offer"`
		} `json:"mfa_devices"`
	}
	if code := api.do("GET", "/api/v1/users/"+user+"/mfa-devices", nil, &list); code != 200 {
		t.Fatalf("GET %s's MFA devices = %d", user, code)
	}
	var seq []string
	for _, d := range list.MFADevices {
		if d.ID.String() == id && d.Offer != nil {
			seq = d.Offer.Sequence
		}
	}
	if len(seq) == 0 {
		t.Fatalf("the API lists no button sequence for %s's MFA device %s", user, id)
	}
	st := pressButton(t, sim, "ok")
	if st.View != "offer-entry" {
		t.Fatalf("after OK on the offer the view is %q, want offer-entry", st.View)
	}
	for _, b := range seq {
		st = pressButton(t, sim, b)
	}
	return st
}

func pressButton(t *testing.T, sim *httptest.Server, button string) State {
	t.Helper()
	resp, err := http.Post(sim.URL+"/sim/buttons/"+button, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st State
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil || resp.StatusCode != 200 {
		t.Fatalf("press %s: %d %v", button, resp.StatusCode, err)
	}
	return st
}

// TestEndToEnd is the product's promise in one test: the simulator's
// appliance pairs with the in-process server through the code it shows;
// an admin registers an MFA device for a user with "send to appliance";
// OK on the appliance stores it; the code the appliance shows confirms
// the registration; applications can verify its codes (once each); and
// deleting the MFA device wipes the account from the appliance.
func TestEndToEnd(t *testing.T) {
	s, sim := startSystem(t, Config{})
	app := s.appliances[0]

	// Pairing: the appliance shows a code; the simulator enters it as an
	// admin would (autoPair), and the appliance learns it on its next sync.
	testkit.WaitFor(t, 10*time.Second, "the simulator to get there", func() bool { st := getState(t, sim.URL+"/sim/state"); return st.Sync != nil && st.Sync.Paired })
	infos, err := s.server.srv.Appliances().Appliances(context.Background())
	if err != nil || len(infos) != 1 {
		t.Fatalf("server lists %d appliances (%v), want 1", len(infos), err)
	}

	token, err := api.CreateToken(context.Background(), s.server.store, "e2e")
	if err != nil {
		t.Fatal(err)
	}
	api := apiClient{t: t, base: s.server.URL(), token: token}
	if code := api.do("POST", "/api/v1/users", map[string]string{"username": "alice", "display_name": "Alice"}, nil); code != 201 {
		t.Fatalf("create user = %d", code)
	}
	var created struct {
		ID         json.Number `json:"id"`
		Secret     string      `json:"secret"`
		OTPAuthURI string      `json:"otpauth_uri"`
	}
	if code := api.do("POST", "/api/v1/users/alice/mfa-devices", map[string]string{"name": "Kiosk token", "appliance": infos[0].Name}, &created); code != 201 {
		t.Fatalf("register with appliance = %d", code)
	}
	devPath := fmt.Sprintf("/api/v1/users/alice/mfa-devices/%s", created.ID)

	// The offer reaches the appliance; OK and the button sequence the
	// console shows (physical presence, and sight of the console) store
	// it as pending and show its QR code, then the secret, then the code.
	testkit.WaitFor(t, 10*time.Second, "the simulator to get there", func() bool { return getState(t, sim.URL+"/sim/state").View == "offer" })
	if st := pressOfferSequence(t, sim, api, "alice", created.ID.String()); st.View != "qr" {
		t.Fatalf("after the sequence on the offer the view is %q, want qr", st.View)
	}
	var acct vault.Account
	testkit.WaitFor(t, 10*time.Second, "the simulator to get there", func() bool {
		for _, a := range app.Vault().List() {
			if !a.IsLocal() {
				acct = a
				return true
			}
		}
		return false
	})
	if acct.State != vault.Pending {
		t.Fatalf("offered account is %v, want pending", acct.State)
	}
	if st := pressButton(t, sim, "ok"); st.View != "secret" {
		t.Fatalf("view %q, want secret", st.View)
	}
	// The appliance shows codes only once its clock trusts itself.
	testkit.WaitFor(t, 10*time.Second, "the simulator to get there", func() bool { return getState(t, sim.URL+"/sim/state").TimeState == "SYNCED" })
	st := pressButton(t, sim, "ok")
	if st.View != "code" || !st.CodeShown || st.AccountID != acct.ID {
		t.Fatalf("after the secret: %+v, want the new account's code", st.Status)
	}

	// The admin types the code the appliance shows.
	shown := st.Code
	if shown == "" {
		t.Fatal("no code read from the appliance")
	}
	if code := api.do("POST", devPath+"/confirm", map[string]any{"codes": []string{shown}}, nil); code != 200 {
		t.Fatalf("confirm with the appliance's code = %d", code)
	}
	testkit.WaitFor(t, 10*time.Second, "the simulator to get there", func() bool { a, err := app.Vault().Get(acct.ID); return err == nil && a.State == vault.Active })

	// An application verifies the next code once; a replay is refused.
	k, err := enroll.ParseURI(created.OTPAuthURI)
	if err != nil {
		t.Fatal(err)
	}
	next := enroll.CodeAt(k, enroll.Step(k, time.Now())+1)
	var ok struct {
		OK bool `json:"ok"`
	}
	if code := api.do("POST", "/api/v1/verify", map[string]string{"username": "alice", "code": next}, &ok); code != 200 || !ok.OK {
		t.Fatalf("verify next code = %d %+v", code, ok)
	}
	if code := api.do("POST", "/api/v1/verify", map[string]string{"username": "alice", "code": next}, &ok); code != 401 || ok.OK {
		t.Fatalf("replayed verify = %d %+v, want 401", code, ok)
	}

	// Deleting the MFA device wipes the account from the appliance.
	if code := api.do("DELETE", devPath, nil, nil); code != 204 && code != 200 {
		t.Fatalf("delete = %d", code)
	}
	testkit.WaitFor(t, 10*time.Second, "the simulator to get there", func() bool { _, err := app.Vault().Get(acct.ID); return err != nil })
	if n := app.Vault().Len(); n != 3 {
		t.Errorf("appliance holds %d accounts after the delete, want its 3 local ones", n)
	}
}
