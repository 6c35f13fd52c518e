package server

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/totpbox/totpbox/enroll"
	"github.com/totpbox/totpbox/enroll/server/browsertest"
)

// TestBrowserLateRegistrationCode drives the console in Chromium through
// the seed's late code (issue 11, item 3): a code typed 5 steps late
// registers the device, the page says it is out of sync beside the
// device with a Resync link, and a resync with two consecutive codes
// through the console clears the mark.
func TestBrowserLateRegistrationCode(t *testing.T) {
	b := browsertest.Start(t, 90*time.Second)
	h := newHarness(t, storeSQLite(t), nil)
	h.admin()
	h.mustCall(201, "POST", "/api/v1/users", map[string]any{"username": "carol"})
	ts := httptest.NewServer(h.srv.Handler())
	defer ts.Close()
	run, text := b.Run, b.Text

	run("sign in",
		chromedp.Navigate(ts.URL+"/signin"),
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), "root"),
		chromedp.SendKeys(chromedp.ID("password"), adminPassword),
		chromedp.Click(chromedp.CSS(`form[action="/signin"] button[type=submit]`)),
		chromedp.WaitVisible(browsertest.ByText("h1", "Users")),
	)
	run("register: device name",
		chromedp.Navigate(ts.URL+"/users/carol/mfa-devices/new"),
		chromedp.WaitVisible(chromedp.ID("name")),
		chromedp.SendKeys(chromedp.ID("name"), "Late phone"),
		chromedp.Click(browsertest.ByText("button", "Next")),
		chromedp.WaitVisible(browsertest.ByText("h2", "Device configuration: Late phone")),
	)
	secret, _ := b.Eval("secret", `document.getElementById("secret-key").dataset.secret`).(string)
	sk, err := enroll.ParseSecret(secret)
	if err != nil {
		t.Fatalf("secret key %q: %v", secret, err)
	}
	k := enroll.Key{Secret: sk, Algorithm: enroll.SHA1, Digits: 6, Period: 30 * time.Second}

	// The user reads a code, then types it 5 steps (2.5 minutes) later.
	typed := enroll.Code(k, h.clock.Now())
	h.clock.Advance(5 * 30 * time.Second)
	run("type the late code and register",
		chromedp.SendKeys(chromedp.ID("code1"), typed),
		chromedp.Click(browsertest.ByText("button", "Register MFA device")),
		chromedp.WaitVisible(chromedp.CSS("table.devices")),
	)
	if got := text("flash", "p.flash"); !strings.Contains(got, `MFA device "Late phone" registered`) || !strings.Contains(got, "out of sync") {
		t.Errorf("flash after a late code = %q, want registered and out of sync", got)
	}
	row := text("device row", "table.devices tbody tr")
	if !strings.Contains(row, "Late phone") || !strings.Contains(row, "Active") || !strings.Contains(row, "Out of sync") {
		t.Fatalf("device row after a late code = %q, want Late phone Active Out of sync", row)
	}
	list := h.mustCall(200, "GET", "/api/v1/users/carol/mfa-devices", nil)["mfa_devices"].([]any)
	if d := list[0].(map[string]any); len(list) != 1 || d["out_of_sync"] != true || d["drift_seconds"].(float64) != 0 {
		t.Fatalf("API devices after a late code = %v, want one, out of sync, drift 0", list)
	}

	// Resync beside the mark, with two consecutive codes of a later step
	// than the one used at registration.
	h.clock.Advance(30 * time.Second)
	s := enroll.Step(k, h.clock.Now())
	run("resync from the mark",
		chromedp.Click(chromedp.CSS("span.out-of-sync + a")),
		chromedp.WaitVisible(browsertest.ByText("h1", "Resync MFA device: Late phone")),
		chromedp.SendKeys(chromedp.ID("code1"), enroll.CodeAt(k, s-1)),
		chromedp.SendKeys(chromedp.ID("code2"), enroll.CodeAt(k, s)),
		chromedp.Click(browsertest.ByText("button", "Resync")),
		chromedp.WaitVisible(chromedp.CSS("table.devices")),
	)
	if got := text("flash", "p.flash"); got != `MFA device "Late phone" resynced; its clock is +0 s from the server's.` {
		t.Errorf("flash after resync = %q", got)
	}
	if row := text("device row", "table.devices tbody tr"); strings.Contains(row, "Out of sync") || !strings.Contains(row, "Active") {
		t.Fatalf("device row after resync = %q, want Active without Out of sync", row)
	}
	if n := b.Eval("marks", `document.querySelectorAll("span.out-of-sync").length`); n != float64(0) {
		t.Fatalf("%v out-of-sync marks after resync, want none", n)
	}
	h.clock.Advance(30 * time.Second)
	if status, reason := h.verify("carol", enroll.Code(k, h.clock.Now())); status != 200 {
		t.Fatalf("verify after resync = %d %q, want 200", status, reason)
	}
}
