package server

import (
	"context"
	"html"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/totpbox/totpbox/enroll"
	"github.com/totpbox/totpbox/enroll/server/core"
)

const nudge = "Your admin account signs in with a password alone."

// registerOwn registers an MFA device for the signed-in user through the
// portal's pages, and returns its key and the page it ends on.
func registerOwn(t *testing.T, h *harness, b *browser, name string) (enroll.Key, string) {
	t.Helper()
	_, _, page := b.get("/portal/mfa-devices/new")
	status, path, page := b.post("/portal/mfa-devices", url.Values{"name": {name}}, csrf(t, page))
	if status != 200 || !strings.HasSuffix(path, "/configure") {
		t.Fatalf("device name step: %d at %s\n%s", status, path, page)
	}
	k, err := enroll.ParseURI(decodeQR(t, []byte(mustGet(t, b, qrRE.FindStringSubmatch(page)[1]))))
	if err != nil {
		t.Fatal(err)
	}
	status, path, page = b.post(configureRE.FindStringSubmatch(page)[1], url.Values{"code1": {enroll.Code(k, h.clock.Now())}}, csrf(t, page))
	if status != 200 || path != "/portal" {
		t.Fatalf("register: %d at %s\n%s", status, path, page)
	}
	return k, page
}

func mustGet(t *testing.T, b *browser, path string) string {
	t.Helper()
	status, _, body := b.get(path)
	if status != 200 {
		t.Fatalf("GET %s = %d", path, status)
	}
	return body
}

// TestAdminRegistersOwnMFADevice: an admin's own MFA devices are theirs to
// manage, whatever the self-service setting; a banner asks an admin
// without one to register one, and goes once they have.
func TestAdminRegistersOwnMFADevice(t *testing.T) {
	h := newHarness(t, storeSQLite(t), nil)
	h.admin()
	b := h.browser()
	page := b.signIn("root", adminPassword, nil, h.clock)
	if !strings.Contains(page, nudge) || !strings.Contains(page, `href="/portal/mfa-devices/new">Register an MFA device</a>`) {
		t.Fatalf("an admin without MFA sees no banner:\n%s", page)
	}
	page = mustGet(t, b, "/portal")
	if strings.Contains(page, "ask an admin") || !strings.Contains(page, `href="/portal/mfa-devices/new"`) {
		t.Fatalf("an admin's own MFA devices page does not offer registration:\n%s", page)
	}
	_, page = registerOwn(t, h, b, "Root phone")
	if !strings.Contains(page, "Root phone") {
		t.Fatalf("portal after registration:\n%s", page)
	}
	if page = mustGet(t, b, "/users"); strings.Contains(page, nudge) {
		t.Fatalf("the banner stays after the admin registered a device:\n%s", page)
	}
}

// TestRequireAdminMFA: with the setting on, an admin without an MFA
// device is sent to register one after signing in and reaches no console
// page before; once registered, sign-in asks for a code and the console
// opens.
func TestRequireAdminMFA(t *testing.T) {
	h := newHarness(t, storeSQLite(t), nil)
	h.admin()
	ctx := context.Background()
	if _, err := core.CreateAdmin(ctx, h.st, "ada", "ada password 1"); err != nil {
		t.Fatal(err)
	}
	rootKey := func() enroll.Key {
		b := h.browser()
		b.signIn("root", adminPassword, nil, h.clock)
		k, _ := registerOwn(t, h, b, "Root phone")
		// The setting is on the Settings page.
		page := mustGet(t, b, "/settings")
		if !strings.Contains(page, `name="require_admin_mfa">`) {
			t.Fatalf("settings page lacks the admin MFA setting:\n%s", page)
		}
		st := core.DefaultSettings()
		form := url.Values{"require_admin_mfa": {"on"}}
		for k, v := range st.Map() {
			if k != "require_admin_mfa" && k != "self_service" {
				form.Set(k, v)
			}
		}
		form.Set("lockout_clear_minutes", "10")
		status, path, page := b.post("/settings", form, csrf(t, page))
		if status != 200 || path != "/settings" || !strings.Contains(page, "Settings saved.") {
			t.Fatalf("save settings: %d at %s\n%s", status, path, page)
		}
		return k
	}()
	if st, _ := h.srv.Core().Settings(ctx); !st.RequireAdminMFA {
		t.Fatalf("settings after saving with the box ticked: %+v", st)
	}
	h.clock.Advance(30 * time.Second)

	b := h.browser()
	_, path, page := b.post("/signin", url.Values{"username": {"ada"}, "password": {"ada password 1"}}, "")
	if path != "/portal/mfa-devices/new" || !strings.Contains(html.UnescapeString(page), "Register an MFA device first: the settings require one for admins.") {
		t.Fatalf("an admin without MFA lands at %s:\n%s", path, page)
	}
	for _, p := range []string{"/users", "/audit", "/settings", "/appliances"} {
		if _, path, _ := b.get(p); path != "/portal/mfa-devices/new" {
			t.Errorf("GET %s without MFA: at %s, want /portal/mfa-devices/new", p, path)
		}
	}
	if status, _, page := b.post("/users", url.Values{"username": {"eve"}}, csrf(t, page)); status != 403 {
		t.Errorf("POST /users without MFA = %d, want 403:\n%s", status, page)
	}
	if _, err := h.st.UserByName(ctx, "eve"); err == nil {
		t.Errorf("an admin without MFA created a user")
	}
	k, _ := registerOwn(t, h, b, "Ada phone")
	if page := mustGet(t, b, "/users"); !strings.Contains(page, "<h1>Users</h1>") {
		t.Fatalf("after registering, the console stays closed:\n%s", page)
	}
	// Signing in again now takes a code.
	h.clock.Advance(30 * time.Second)
	b = h.browser()
	b.signIn("ada", "ada password 1", &k, h.clock)
	b = h.browser()
	b.signIn("root", adminPassword, &rootKey, h.clock)
}
