package server

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/totpbox/totpbox/enroll"
	"github.com/totpbox/totpbox/enroll/proto"
	"github.com/totpbox/totpbox/enroll/server/browsertest"
)

// TestBrowserRegistrationLifecycle drives the console in Chromium through
// the edges of a registration: after "Send to appliance" the status line
// follows the appliance (OK pressed) without a reload; a registration
// offered and then registered by a phone's code says the offer was
// withdrawn and the device is on no appliance; and an expired one shows
// the API's 410 message with Start again, not "no MFA device".
func TestBrowserRegistrationLifecycle(t *testing.T) {
	b := browsertest.Start(t, 120*time.Second)
	h := newHarness(t, storeSQLite(t), nil)
	h.admin()
	ts := httptest.NewServer(h.srv.Handler())
	defer ts.Close()
	run, text := b.Run, b.Text
	ctx := context.Background()

	h.mustCall(201, "POST", "/api/v1/users", map[string]any{"username": "carol"})
	kiosk := h.newAppliance()
	if _, err := h.srv.Appliances().Pair(ctx, kiosk.pairingCode(), "Edge kiosk"); err != nil {
		t.Fatal(err)
	}
	kiosk.learnID()
	kiosk.sync(nil)

	run("sign in",
		chromedp.Navigate(ts.URL+"/signin"),
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), "root"),
		chromedp.SendKeys(chromedp.ID("password"), adminPassword),
		chromedp.Click(chromedp.CSS(`form[action="/signin"] button[type=submit]`)),
		chromedp.WaitVisible(browsertest.ByText("h1", "Users")),
	)
	register := func(name string) {
		run("register "+name,
			chromedp.Navigate(ts.URL+"/users/carol/mfa-devices/new"),
			chromedp.WaitVisible(chromedp.ID("name")),
			chromedp.SendKeys(chromedp.ID("name"), name),
			chromedp.Click(browsertest.ByText("button", "Next")),
			chromedp.WaitVisible(browsertest.ByText("h2", "Device configuration: "+name)),
			chromedp.Click(chromedp.CSS(`form.send button[type=submit]`)),
			chromedp.WaitVisible(chromedp.CSS(`p.offer.pending`)),
		)
	}

	// Live status: OK pressed on the appliance shows up by itself.
	register("Edge four")
	run("the script hides the Refresh link", chromedp.WaitNotVisible(chromedp.CSS("p.offer a.refresh")))
	if got := text("banner", "main > p.flash"); !strings.Contains(got, "the buttons the status line shows") {
		t.Fatalf("banner after Send to appliance = %q", got)
	}
	cs := kiosk.sync(nil)
	_, seq, err := proto.OpenOffer(cs[0].Sealed, cs[0].DeviceID, kiosk.boxPub, kiosk.boxPriv)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := text("status line", "p.offer"), "on the appliance press OK, then "+strings.ToUpper(strings.Join(seq, " "))+"."; !strings.Contains(got, want) {
		t.Fatalf("status line with JavaScript = %q, want %q", got, want)
	}
	kiosk.ack(proto.Ack{Rev: cs[0].Rev, Result: proto.ResultAccepted})
	run("status follows the OK without a reload", chromedp.WaitVisible(chromedp.CSS(`p.offer.accepted`)))
	if got := text("status line", "p.offer"); got != "Accepted on “Edge kiosk”: now type the code the appliance shows." {
		t.Fatalf("status line after OK = %q", got)
	}
	// The banner asking for OK on the appliance is stale now: gone.
	if stale := b.Eval("banners", `Array.from(document.querySelectorAll("main > p.flash, main > p.error")).map(p => p.textContent).join(" | ")`); stale != "" {
		t.Errorf("banner still shown after the status changed: %q", stale)
	}

	// Offered, then registered with a phone's code: the console says the
	// offer was withdrawn and the device is on no appliance.
	register("Edge five")
	secret, _ := b.Eval("secret", `document.getElementById("secret-key").dataset.secret`).(string)
	sk, err := enroll.ParseSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	phone := enroll.Key{Secret: sk, Algorithm: enroll.SHA1, Digits: 6, Period: 30 * time.Second}
	run("register by the phone's code",
		chromedp.SendKeys(chromedp.ID("code1"), enroll.Code(phone, h.clock.Now())),
		chromedp.Click(browsertest.ByText("button", "Register MFA device")),
		chromedp.WaitVisible(chromedp.CSS("table.devices")),
	)
	if got := text("flash", "p.flash"); !strings.Contains(got, `Its offer to appliance "Edge kiosk" was withdrawn: this MFA device is on no appliance.`) {
		t.Errorf("flash after registering by code while offered = %q", got)
	}
	if got := text("devices", "table.devices"); !strings.Contains(got, "None: registered by code while offered to “Edge kiosk”; that offer was withdrawn") {
		t.Errorf("device table = %q, want Edge five on no appliance", got)
	}

	// Expired: the page says so with the API's message and Start again,
	// before and after the janitor removed it.
	register("Edge six")
	loc, _ := b.Eval("where", "location.href").(string)
	h.clock.Advance(11 * time.Minute)
	for _, swept := range []bool{false, true} {
		if swept {
			h.srv.Sweep(ctx)
		}
		run("reload the expired registration",
			chromedp.Navigate(loc),
			chromedp.WaitVisible(browsertest.ByText("h2", "This registration expired")),
		)
		main := text("expired page", "main")
		if !strings.Contains(main, "This registration expired at ") || !strings.Contains(main, "; start again.") || strings.Contains(main, "no MFA device") {
			t.Errorf("expired page (swept %v) = %q, want the 410 message", swept, main)
		}
	}
	run("start again",
		chromedp.Click(browsertest.ByText("a", "Start again")),
		chromedp.WaitVisible(chromedp.ID("name")),
	)
}
