package server

import (
	"context"
	"html"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/totpbox/totpbox/enroll/server/core"
)

// TestConsolePendingRegistration checks how the console words a
// registration not finished: its row says pending and offers "Cancel
// registration", not Delete; cancelling is not worded as deleting a
// device; and "Start again" after it expired keeps the friendly name,
// before and after the janitor removed it.
func TestConsolePendingRegistration(t *testing.T) {
	h := newHarness(t, storeSQLite(t), nil)
	h.admin()
	h.mustCall(201, "POST", "/api/v1/users", map[string]any{"username": "lena"})
	b := h.browser()
	b.signIn("root", adminPassword, nil, h.clock)
	start := func(name string) string {
		t.Helper()
		_, _, page := b.get("/users/lena/mfa-devices/new")
		status, path, _ := b.post("/users/lena/mfa-devices", url.Values{"name": {name}}, csrf(t, page))
		if status != 200 || !strings.HasSuffix(path, "/configure") {
			t.Fatalf("start %q: %d at %s", name, status, path)
		}
		return strings.TrimSuffix(path, "/configure")
	}
	first := start("Bob's iPhone")

	_, _, page := b.get("/users/lena/mfa-devices")
	row := html.UnescapeString(page[strings.Index(page, "<tbody>"):])
	for _, want := range []string{"Bob's iPhone", "Pending", "Not yet: registration pending, until", "Continue registration", ">Cancel registration</a>"} {
		if !strings.Contains(row, want) {
			t.Errorf("pending row lacks %q:\n%s", want, row)
		}
	}
	if strings.Contains(row, ">Delete</a>") {
		t.Errorf("pending row offers Delete:\n%s", row)
	}
	_, _, page = b.get(first + "/delete")
	if !strings.Contains(page, "<h1>Cancel registration</h1>") || !strings.Contains(page, "Nothing is registered yet") || strings.Contains(page, "Delete") {
		t.Errorf("cancel page of a pending registration:\n%s", page)
	}
	status, _, page := b.post(first+"/delete", nil, csrf(t, page))
	if want := "Registration of &#34;Bob&#39;s iPhone&#34; cancelled. Nothing was registered."; status != 200 || !strings.Contains(page, want) {
		t.Errorf("cancel = %d, want %q:\n%s", status, want, page)
	}

	// Expired: Start again keeps the name, while the registration is
	// still there and once the janitor removed it.
	second := start("Kiosk token")
	h.clock.Advance(h.srv.Core().RegistrationTimeout() + time.Minute)
	for _, when := range []string{"expired", "removed"} {
		if when == "removed" {
			h.srv.Sweep(context.Background())
		}
		status, _, page = b.get(second + "/configure")
		again := `href="/users/lena/mfa-devices/new?name=Kiosk&#43;token"`
		if status != 410 || !strings.Contains(page, again) || !strings.Contains(page, "The registration of “Kiosk token”") {
			t.Fatalf("%s registration = %d, want 410 with Start again keeping the name (%s):\n%s", when, status, again, page)
		}
	}
	_, _, page = b.get("/users/lena/mfa-devices/new?name=Kiosk+token")
	if !strings.Contains(page, `value="Kiosk token"`) {
		t.Errorf("Start again does not keep the name:\n%s", page)
	}
}

// TestPortalAdminSendsToAppliance checks that an admin registering their
// own MFA device from My MFA devices may send it to an appliance, as the
// README says, and that a user may not.
func TestPortalAdminSendsToAppliance(t *testing.T) {
	h := newHarness(t, storeSQLite(t), nil)
	h.admin()
	b := h.browser()
	b.signIn("root", adminPassword, nil, h.clock)
	kiosk := h.newAppliance()
	pairThroughConsole(t, b, kiosk, "Lobby kiosk 3")

	_, _, page := b.get("/portal/mfa-devices/new")
	status, path, page := b.post("/portal/mfa-devices", url.Values{"name": {"Kiosk token"}}, csrf(t, page))
	if status != 200 || !strings.HasSuffix(path, "/configure") {
		t.Fatalf("start in the portal: %d at %s", status, path)
	}
	send := strings.TrimSuffix(path, "/configure") + "/send"
	if !strings.Contains(page, `action="`+send+`"`) || !strings.Contains(page, "Send to appliance") {
		t.Fatalf("the admin's portal configuration page offers no Send to appliance:\n%s", page)
	}
	status, path, page = b.post(send, url.Values{"appliance": {kiosk.id}}, csrf(t, page))
	if want := "Sent to appliance &#34;Lobby kiosk 3&#34;."; status != 200 || !strings.HasPrefix(path, "/portal/") || !strings.Contains(page, want) {
		t.Fatalf("send from the portal = %d at %s, want %q:\n%s", status, path, want, page)
	}

	// A user registers by phone only.
	h.mustCall(201, "POST", "/api/v1/users", map[string]any{"username": "lena"})
	lena, err := h.st.UserByName(context.Background(), "lena")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.srv.Core().SetPassword(context.Background(), core.Actor{Role: core.RoleAdmin}, lena, "lena password 1"); err != nil {
		t.Fatal(err)
	}
	st, err := h.srv.Core().Settings(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	st.SelfService = true
	if err := h.srv.Core().SaveSettings(context.Background(), st); err != nil {
		t.Fatal(err)
	}
	u := h.browser()
	u.signIn("lena", "lena password 1", nil, h.clock)
	_, _, page = u.get("/portal/mfa-devices/new")
	_, path, page = u.post("/portal/mfa-devices", url.Values{"name": {"Phone"}}, csrf(t, page))
	if strings.Contains(page, "Send to appliance") {
		t.Errorf("a user's configuration page offers Send to appliance:\n%s", page)
	}
	if status, _, _ := u.post(strings.TrimSuffix(path, "/configure")+"/send", url.Values{"appliance": {kiosk.id}}, csrf(t, page)); status != 403 {
		t.Errorf("a user's send = %d, want 403", status)
	}
}
