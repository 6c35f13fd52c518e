package system

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/totpbox/totpbox/enroll/server/browsertest"
)

// TestBrowserSendToAppliance walks the README's flow through the console in
// chromium: the admin registers an MFA device for a user and sends it to
// the simulated appliance, OK is pressed on the appliance, and the code the
// appliance shows is typed into the console, which then lists the device
// as active.
func TestBrowserSendToAppliance(t *testing.T) {
	ctx := browsertest.New(t, 90*time.Second)
	s, sim := startSystem(t, Config{})
	waitFor(t, func() bool {
		st := getState(t, sim.URL+"/sim/state")
		return st.Sync != nil && st.Sync.Paired && st.TimeState == "SYNCED"
	})
	console := strings.TrimSuffix(s.ConsoleURL(), "/")

	fatal := func(what string, err error) {
		t.Helper()
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		body, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("main")))
		t.Fatalf("%s: %v (at %s)\n%s", what, err, loc, body)
	}
	run := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			fatal(what, err)
		}
	}

	run("sign in",
		chromedp.Navigate(console+"/signin"),
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), AdminUser),
		chromedp.SendKeys(chromedp.ID("password"), s.AdminPassword()),
		chromedp.Click(chromedp.CSS(`form[action="/signin"] button[type=submit]`)),
		chromedp.WaitVisible(browsertest.ByText("h1", "Users")),
	)
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
		chromedp.Click(chromedp.CSS(`input[name=kind][value=appliance]`)),
		chromedp.Click(browsertest.ByText("button", "Next")),
		chromedp.WaitVisible(browsertest.ByText("h2", "Device configuration: Kiosk token")),
	)
	run("send to appliance",
		chromedp.WaitVisible(chromedp.ID("appliance")),
		chromedp.Click(chromedp.CSS(`form.send button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`p.offer.pending`)),
	)

	// On the appliance: the offer, OK, then QR → secret → code.
	waitFor(t, func() bool { return getState(t, sim.URL+"/sim/state").View == "offer" })
	for _, want := range []string{"qr", "secret", "code"} {
		if st := pressButton(t, sim, "ok"); st.View != want {
			t.Fatalf("view %q after OK, want %q", st.View, want)
		}
	}
	st := getState(t, sim.URL+"/sim/state")
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
	table, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("table.devices")))
	if err != nil {
		fatal("devices tab", err)
	}
	if !strings.Contains(table, "Kiosk token") || !strings.Contains(table, "Active") || !strings.Contains(table, "Appliance") {
		t.Fatalf("devices tab after registration: %q, want Kiosk token, appliance, Active", table)
	}
}
