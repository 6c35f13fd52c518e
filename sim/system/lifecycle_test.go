package system

import (
	"context"
	"errors"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/totpbox/totpbox/clock"
	"github.com/totpbox/totpbox/device"
	"github.com/totpbox/totpbox/device/vault"
	"github.com/totpbox/totpbox/enroll"
	"github.com/totpbox/totpbox/enroll/server"
	"github.com/totpbox/totpbox/enroll/server/api"
	"github.com/totpbox/totpbox/enroll/store"
	"github.com/totpbox/totpbox/enroll/store/storetest"
	"github.com/totpbox/totpbox/internal/testkit"
)

// lifecycleRig is a registration server on a given store, in virtual
// time, with real appliances (device loop, sync client, vault, emulated
// panel and buttons) syncing with it.
type lifecycleRig struct {
	t     *testing.T
	clock *testkit.Clock
	srv   *server.Server
	url   string
	api   apiClient
	ctx   context.Context
}

func newLifecycleRig(t *testing.T, st store.Store) *lifecycleRig {
	t.Helper()
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "master.key")
	if err := store.NewKeyFile(keyFile); err != nil {
		t.Fatal(err)
	}
	sealer, err := store.LoadSealer(keyFile, "")
	if err != nil {
		t.Fatal(err)
	}
	clk := testkit.NewClock(time.Now())
	srv, err := server.New(server.Config{Store: st, Sealer: sealer, Clock: clk, Logger: testkit.Quiet()})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	token, err := api.CreateToken(t.Context(), st, "lifecycle-test")
	if err != nil {
		t.Fatal(err)
	}
	r := &lifecycleRig{t: t, clock: clk, srv: srv, url: hs.URL, ctx: t.Context(),
		api: apiClient{t: t, base: hs.URL, token: token}}
	if code := r.api.do("POST", "/api/v1/users", map[string]any{"username": "carol"}, nil); code != 201 {
		t.Fatalf("create user carol = %d, want 201", code)
	}
	return r
}

// appliance starts a simulated appliance paired with the server as name.
func (r *lifecycleRig) appliance(name string) *Appliance {
	t := r.t
	t.Helper()
	a, err := NewAppliance(ApplianceConfig{Name: name, Dir: t.TempDir(), Clock: clock.System{}, Server: r.url,
		Version: "test", Logger: testkit.Quiet()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("appliance %s: Run() = %v", name, err)
		}
	})
	var code string
	testkit.WaitFor(t, 10*time.Second, "a pairing code", func() bool { _, code, _ = a.Client().PairingCode(); return code != "" })
	if _, err := r.srv.Appliances().Pair(r.ctx, code, name); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 10*time.Second, "the appliance to know it is paired", func() bool { return a.Client().Status().Paired })
	return a
}

type createdDevice struct {
	ID         int64  `json:"id"`
	Kind       string `json:"kind"`
	Status     string `json:"status"`
	OTPAuthURI string `json:"otpauth_uri"`
	State      string `json:"state"`
	Appliance  string `json:"appliance"`
	Offer      *struct {
		State    string   `json:"state"`
		Sequence []string `json:"sequence"`
	} `json:"offer"`
}

// accept accepts the offer of d shown on a as the person at the appliance
// does: OK, then the button sequence the admin API shows for the offer.
func (r *lifecycleRig) accept(d createdDevice, a *Appliance) {
	r.t.Helper()
	d = r.device(d.ID)
	if d.Offer == nil || len(d.Offer.Sequence) == 0 {
		r.t.Fatalf("the API shows no button sequence for the offer of %d: %+v", d.ID, d.Offer)
	}
	pressAll(r.t, a, append([]string{"ok"}, d.Offer.Sequence...))
}

// pressAll presses the buttons named on a, in order.
func pressAll(t *testing.T, a *Appliance, names []string) {
	t.Helper()
	for _, name := range names {
		b, err := device.ParseButton(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Press(t.Context(), b); err != nil {
			t.Fatal(err)
		}
	}
}

// offer starts a registration for carol and sends it to the appliance
// named to; it returns the device and its key (what a phone scanning the
// console's QR code learns).
func (r *lifecycleRig) offer(name, to string, a *Appliance) (createdDevice, enroll.Key) {
	t := r.t
	t.Helper()
	var d createdDevice
	if code := r.api.do("POST", "/api/v1/users/carol/mfa-devices", map[string]string{"name": name, "appliance": to}, &d); code != 201 {
		t.Fatalf("register %q on %q = %d, want 201", name, to, code)
	}
	k, err := enroll.ParseURI(d.OTPAuthURI)
	if err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 10*time.Second, "the offer on the appliance", func() bool { return a.State().View == "offer" })
	return d, k
}

func (r *lifecycleRig) device(id int64) createdDevice {
	var list struct {
		MFADevices []createdDevice `json:"mfa_devices"`
	}
	if code := r.api.do("GET", "/api/v1/users/carol/mfa-devices", nil, &list); code != 200 {
		r.t.Fatalf("GET devices = %d", code)
	}
	for _, d := range list.MFADevices {
		if d.ID == id {
			return d
		}
	}
	r.t.Fatalf("no MFA device %d", id)
	return createdDevice{}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func vaultAccount(k enroll.Key) vault.Account {
	return vault.Account{Issuer: k.Issuer, Label: k.Account, Key: k, State: vault.Active}
}

// serverAccount reports whether a holds an account delivered for any
// registration.
func serverAccount(a *Appliance) bool { return len(serverAccounts(a.Vault())) > 0 }

// withdrawnOffer checks what the appliance shows once the offer is
// withdrawn: the offer left the screen, NEXT moves again, and OK stores
// nothing and shows no QR code or secret.
func withdrawnOffer(t *testing.T, a *Appliance) {
	t.Helper()
	testkit.WaitFor(t, 10*time.Second, "the offer to leave the appliance's screen", func() bool { return !a.State().OfferPending })
	before := a.State().AccountIndex
	if err := a.Press(t.Context(), device.Next); err != nil {
		t.Fatal(err)
	}
	if st := a.State(); st.View != "code" || st.AccountIndex == before && st.AccountCount > 1 {
		t.Errorf("after NEXT: %+v, want the next account's code", st.Status)
	}
	for range 2 {
		if err := a.Press(t.Context(), device.OK); err != nil {
			t.Fatal(err)
		}
		if st := a.State(); st.View == "qr" || st.View == "secret" {
			t.Fatalf("after OK the appliance shows %s: an active or withdrawn registration's secret", st.View)
		}
	}
	if serverAccount(a) {
		t.Errorf("the withdrawn offer left accounts %v", serverAccounts(a.Vault()))
	}
}

// TestOpenOfferWithdrawnByEveryEnd: a registration offered to an appliance
// and not yet answered there ends another way — confirmed with a phone
// through the API, deleted, expired, or sent to another appliance. At
// the appliance's next sync the offer leaves its screen, NEXT reaches the
// codes again, and OK stores nothing and shows no secret. A confirm while
// offered leaves the MFA device active on no appliance, kind
// authenticator-app, with the offer "cancelled". Accepted and then
// expired, the pending account is wiped.
func TestOpenOfferWithdrawnByEveryEnd(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) store.Store) {
		r := newLifecycleRig(t, open(t))
		kiosk := r.appliance("Edge kiosk")
		demo := func(a *Appliance) { // two local accounts, so NEXT moves
			for _, n := range []string{"one", "two"} {
				k, _ := enroll.NewKey("Local", n)
				if _, err := a.Vault().Add(vaultAccount(k)); err != nil {
					t.Fatal(err)
				}
			}
			a.Loop().Refresh()
		}
		demo(kiosk)

		t.Run("confirmed by a phone", func(t *testing.T) {
			d, k := r.offer("Edge four", "Edge kiosk", kiosk)
			code := enroll.Code(k, r.clock.Now())
			var got createdDevice
			if c := r.api.do("POST", "/api/v1/users/carol/mfa-devices/"+itoa(d.ID)+"/confirm", map[string]any{"codes": []string{code}}, &got); c != 200 {
				t.Fatalf("confirm = %d, want 200", c)
			}
			if got.Status != "active" || got.Kind != "authenticator-app" {
				t.Errorf("confirmed while offered: %+v, want active, authenticator-app", got)
			}
			withdrawnOffer(t, kiosk)
			if d := r.device(d.ID); d.Offer == nil || d.Offer.State != "cancelled" {
				t.Errorf("offer after the confirm = %+v, want cancelled", d.Offer)
			}
		})
		t.Run("deleted", func(t *testing.T) {
			d, _ := r.offer("Edge five", "Edge kiosk", kiosk)
			if c := r.api.do("DELETE", "/api/v1/users/carol/mfa-devices/"+itoa(d.ID), nil, nil); c != 204 {
				t.Fatalf("delete = %d, want 204", c)
			}
			withdrawnOffer(t, kiosk)
		})
		t.Run("sent elsewhere", func(t *testing.T) {
			other := r.appliance("Back office")
			demo(other)
			d, _ := r.offer("Edge six", "Edge kiosk", kiosk)
			var got createdDevice
			if c := r.api.do("POST", "/api/v1/users/carol/mfa-devices/"+itoa(d.ID)+"/send", map[string]string{"appliance": "Back office"}, &got); c != 200 {
				t.Fatalf("send elsewhere = %d, want 200", c)
			}
			withdrawnOffer(t, kiosk)
			testkit.WaitFor(t, 10*time.Second, "the offer on the other appliance", func() bool { return other.State().View == "offer" })
			if c := r.api.do("DELETE", "/api/v1/users/carol/mfa-devices/"+itoa(d.ID), nil, nil); c != 204 {
				t.Fatalf("delete = %d, want 204", c)
			}
			withdrawnOffer(t, other)
		})
		t.Run("expired after OK", func(t *testing.T) {
			d, _ := r.offer("Edge seven", "Edge kiosk", kiosk)
			r.accept(d, kiosk)
			if st := kiosk.State(); st.View != "qr" || !serverAccount(kiosk) {
				t.Fatalf("after the sequence on a live offer: %+v, want its QR code", st.Status)
			}
			r.clock.Advance(11 * time.Minute)
			r.srv.Sweep(r.ctx)
			testkit.WaitFor(t, 10*time.Second, "the expired pending account to be wiped", func() bool { return !serverAccount(kiosk) })
			testkit.WaitFor(t, 10*time.Second, "the appliance to leave the wiped account's QR code", func() bool {
				st := kiosk.State()
				return st.View != "qr" && st.View != "secret"
			})
		})
	})
}
