package system

import (
	"github.com/totpbox/totpbox/enroll/server/api"

	"context"
	"github.com/totpbox/totpbox/internal/testkit"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/totpbox/totpbox/device/vault"
	"github.com/totpbox/totpbox/enroll"
	"github.com/totpbox/totpbox/enroll/server/browsertest"
)

// TestBrowserSendToAppliance walks the whole flow through the console in
// chromium: the admin pairs the simulated appliance with the code it
// shows, registers an MFA device for a user and sends it to the appliance;
// OK is pressed on the appliance, and the code it shows is typed into the
// console, which lists the device as active. An application verifies the
// next code once (a replay is refused), and deleting the device in the
// console wipes the account from the appliance.
func TestBrowserSendToAppliance(t *testing.T) {
	b := browsertest.Start(t, 90*time.Second)
	s, sim := startSystem(t, Config{NoAutoPair: true})
	console := strings.TrimSuffix(s.ConsoleURL(), "/")

	run := b.Run

	run("sign in",
		chromedp.Navigate(console+"/signin"),
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), AdminUser),
		chromedp.SendKeys(chromedp.ID("password"), s.AdminPassword()),
		chromedp.Click(chromedp.CSS(`form[action="/signin"] button[type=submit]`)),
		chromedp.WaitVisible(browsertest.ByText("h1", "Users")),
	)
	// Appliances → Pair appliance, with the code on the appliance's screen:
	// the pairing page follows its three demo accounts.
	var code string
	testkit.WaitFor(t, 10*time.Second, "the simulator to get there", func() bool {
		st := getState(t, sim.URL+"/sim/state")
		if st.Sync != nil {
			code = st.Sync.PairingCode
		}
		return code != ""
	})
	for range 3 {
		pressButton(t, sim, "next")
	}
	if st := getState(t, sim.URL+"/sim/state"); st.View != "pairing" {
		t.Fatalf("after the accounts the view is %q, want pairing", st.View)
	}
	run("pair appliance",
		chromedp.Click(browsertest.ByText("a", "Appliances")),
		chromedp.WaitVisible(chromedp.ID("code")),
		chromedp.SendKeys(chromedp.ID("code"), code),
		chromedp.SendKeys(chromedp.ID("name"), "Lobby kiosk 3"),
		chromedp.Click(browsertest.ByText("button", "Pair appliance")),
		chromedp.WaitVisible(browsertest.ByText("td", "Lobby kiosk 3")),
	)
	testkit.WaitFor(t, 10*time.Second, "the simulator to get there", func() bool {
		st := getState(t, sim.URL+"/sim/state")
		return st.Sync != nil && st.Sync.Paired && st.Sync.Name == "Lobby kiosk 3" && st.TimeState == "SYNCED"
	})
	run("back to users", chromedp.Navigate(console+"/users"), chromedp.WaitVisible(browsertest.ByText("h1", "Users")))

	run("create user",
		chromedp.Click(browsertest.ByText("a", "Create user")),
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), "alice"),
		chromedp.SendKeys(chromedp.ID("display_name"), "Alice"),
		chromedp.SendKeys(chromedp.ID("password"), "alice password 1"),
		chromedp.Click(browsertest.ByText("button", "Create user")),
		chromedp.WaitVisible(browsertest.ByText("h1", "alice")),
	)
	run("device name",
		chromedp.Click(browsertest.ByText("a", "MFA devices")),
		chromedp.Click(browsertest.ByText("a", "Register MFA device")),
		chromedp.WaitVisible(chromedp.ID("name")),
		chromedp.SendKeys(chromedp.ID("name"), "Kiosk token"),
		chromedp.Click(browsertest.ByText("button", "Next")),
		chromedp.WaitVisible(browsertest.ByText("h2", "Device configuration: Kiosk token")),
	)
	run("send to appliance",
		chromedp.WaitVisible(chromedp.ID("appliance")),
		chromedp.Click(chromedp.CSS(`form.send button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`p.offer.pending`)),
	)

	// On the appliance: the offer, OK and the button sequence the
	// console's status line shows, then QR → secret → code.
	line := b.Text("status line", "p.offer")
	_, seq, found := strings.Cut(line, "press OK, then ")
	seq, _, _ = strings.Cut(seq, ".")
	if !found || len(strings.Fields(seq)) < 2 {
		t.Fatalf("status line %q shows no button sequence", line)
	}
	testkit.WaitFor(t, 10*time.Second, "the simulator to get there", func() bool { return getState(t, sim.URL+"/sim/state").View == "offer" })
	st := pressButton(t, sim, "ok")
	for _, name := range strings.Fields(seq) {
		if st := getState(t, sim.URL+"/sim/state"); st.View != "offer-entry" {
			t.Fatalf("view %q while the sequence is entered, want offer-entry", st.View)
		}
		st = pressButton(t, sim, strings.ToLower(name))
	}
	if st.View != "qr" {
		t.Fatalf("view %q after the sequence, want qr", st.View)
	}
	for _, want := range []string{"secret", "code"} {
		if st := pressButton(t, sim, "ok"); st.View != want {
			t.Fatalf("view %q after OK, want %q", st.View, want)
		}
	}
	st = getState(t, sim.URL+"/sim/state")
	if !st.CodeShown || st.Label != "Kiosk token" {
		t.Fatalf("appliance shows %+v, want the code of Kiosk token", st.Status)
	}

	// The console now says the offer was accepted; the admin types the
	// code the appliance shows.
	run("offer accepted",
		chromedp.Reload(),
		chromedp.WaitVisible(chromedp.CSS(`p.offer.accepted`)),
		chromedp.SendKeys(chromedp.ID("code1"), getState(t, sim.URL+"/sim/state").Code),
		chromedp.Click(browsertest.ByText("button", "Register MFA device")),
		chromedp.WaitVisible(chromedp.CSS("table.devices")),
	)
	table := b.Text("devices tab", "table.devices")
	if !strings.Contains(table, "Kiosk token") || !strings.Contains(table, "Active") || !strings.Contains(table, "Appliance") {
		t.Fatalf("devices tab after registration: %q, want Kiosk token, appliance, Active", table)
	}

	// An application verifies the next code once; a replay is refused.
	app := s.appliances[0]
	var acct vault.Account
	for _, a := range app.Vault().List() {
		if !a.IsLocal() {
			acct = a
		}
	}
	token, err := api.CreateToken(context.Background(), s.server.store, "browser-test")
	if err != nil {
		t.Fatal(err)
	}
	api := apiClient{t: t, base: s.server.URL(), token: token}
	next := enroll.CodeAt(acct.Key, enroll.Step(acct.Key, time.Now())+1)
	if code := api.do("POST", "/api/v1/verify", map[string]string{"username": "alice", "code": next}, nil); code != 200 {
		t.Fatalf("verify of the appliance's next code = %d, want 200", code)
	}
	if code := api.do("POST", "/api/v1/verify", map[string]string{"username": "alice", "code": next}, nil); code != 401 {
		t.Fatalf("replayed verify = %d, want 401", code)
	}

	// Delete in the console: the account leaves the appliance.
	run("delete the device",
		chromedp.Click(browsertest.ByText("a", "Delete")),
		chromedp.Click(browsertest.ByText("button", "Delete")),
		chromedp.WaitVisible(chromedp.CSS("main")),
	)
	testkit.WaitFor(t, 10*time.Second, "the simulator to get there", func() bool { _, err := app.Vault().Get(acct.ID); return err != nil })
}
