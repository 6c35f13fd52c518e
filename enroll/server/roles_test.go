package server

import (
	"context"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/totpbox/totpbox/enroll/server/api"
	"github.com/totpbox/totpbox/enroll/server/core"
	"github.com/totpbox/totpbox/enroll/store"
)

// roleToken makes an API token with role and returns its bearer value.
func (h *harness) roleToken(name string, role core.Role) string {
	h.t.Helper()
	tok, err := api.CreateTokenRole(context.Background(), h.st, name, role)
	if err != nil {
		h.t.Fatalf("CreateTokenRole(%s): %v", role, err)
	}
	return tok
}

// TestVerifyTokenOnlyVerifies: an application's token made for verifying
// codes cannot register an MFA device for the admin (and so read its
// secret), list users or devices, or change anything; it verifies.
func TestVerifyTokenOnlyVerifies(t *testing.T) {
	h := newHarness(t, storeSQLite(t), nil)
	if _, err := h.srv.Core().CreateUser(context.Background(), core.System, core.NewUser{Username: "admin", Admin: true}); err != nil {
		t.Fatal(err)
	}
	app := h.roleToken("app", core.RoleVerify)

	for _, tc := range []struct {
		method, path string
		body         any
	}{
		{"POST", "/api/v1/users/admin/mfa-devices", map[string]any{"name": "Mine now"}},
		{"GET", "/api/v1/users/admin/mfa-devices", nil},
		{"GET", "/api/v1/users/admin", nil},
		{"POST", "/api/v1/users", map[string]any{"username": "mallory"}},
		{"GET", "/api/v1/audit", nil},
		{"GET", "/api/v1/appliances", nil},
		{"GET", "/api/v1/webhooks", nil},
	} {
		status, raw := h.callRaw(tc.method, tc.path, tc.body, app)
		if status != 403 || !strings.Contains(string(raw), "role; you have the verify role") {
			t.Errorf("%s %s with a verify token = %d %s, want 403 naming the role", tc.method, tc.path, status, raw)
		}
		if strings.Contains(string(raw), "otpauth") {
			t.Errorf("%s %s with a verify token leaked a secret: %s", tc.method, tc.path, raw)
		}
	}
	if _, devs := h.call("GET", "/api/v1/users/admin/mfa-devices", nil); len(devs["mfa_devices"].([]any)) != 0 {
		t.Errorf("the admin has MFA devices after the verify token's tries: %v", devs)
	}

	// It verifies: a code of a user without a device is refused (401,
	// ok false), not a 403.
	status, raw := h.callRaw("POST", "/api/v1/verify", map[string]any{"username": "admin", "code": "123456"}, app)
	if status != 401 || !strings.Contains(string(raw), `"ok":false`) {
		t.Errorf("verify with a verify token = %d %s, want 401 ok false", status, raw)
	}
}

// consoleAs makes a console session for a new user with role (empty: the
// admin flag decides) and sites, and returns a function making requests
// with it.
func (h *harness) consoleAs(username string, admin bool, role string, sites []string) func(method, path string, form url.Values) (int, string) {
	h.t.Helper()
	ctx := context.Background()
	u, err := h.srv.Core().CreateUser(ctx, core.System, core.NewUser{Username: username, Admin: admin})
	if err != nil {
		h.t.Fatal(err)
	}
	v := username + "-session-cookie-value"
	if err := h.st.CreateSession(ctx, store.Session{Hash: core.HashToken(v), UserID: u.ID, Created: h.clock.Now(),
		ExpiresAt: h.clock.Now().Add(time.Hour), CSRF: "csrf-" + username, Role: role, Sites: sites}); err != nil {
		h.t.Fatal(err)
	}
	return func(method, path string, form url.Values) (int, string) {
		if form == nil {
			form = url.Values{}
		}
		form.Set("csrf", "csrf-"+username)
		req := httptest.NewRequest(method, path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(&http.Cookie{Name: "totpserver_session", Value: v})
		w := httptest.NewRecorder()
		h.srv.Handler().ServeHTTP(w, req)
		return w.Code, html.UnescapeString(w.Body.String())
	}
}

// TestApplianceSites: an admin puts appliances in sites, in the console
// and with PATCH /api/v1/appliances/{id}; a help desk limited to a site
// sees and offers only that site's appliances.
func TestApplianceSites(t *testing.T) {
	h := newHarness(t, storeSQLite(t), nil)
	st, err := h.srv.Core().Settings(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	st.RequireAdminMFA = false
	if err := h.srv.Core().SaveSettings(context.Background(), st); err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	for _, name := range []string{"Kiosk A", "Kiosk B"} {
		a := h.newAppliance()
		m := h.mustCall(201, "POST", "/api/v1/appliances", map[string]any{"code": a.pairingCode(), "name": name})
		ids[name] = m["id"].(string)
		if _, ok := m["site"]; ok {
			t.Errorf("a new appliance has a site: %v", m)
		}
	}
	root := h.consoleAs("root", true, "", nil)

	// The console's Rename page sets the site; a bad one changes nothing.
	status, page := root("POST", "/appliances/"+ids["Kiosk A"]+"/rename", url.Values{"name": {"Kiosk A2"}, "site": {"store 12"}})
	if status != 400 || !strings.Contains(page, "A site name may hold only letters, digits and . _ -, not ' '.") {
		t.Errorf("bad site in the console = %d, page without the error:\n%s", status, firstLine(page))
	}
	if m := h.mustCall(200, "GET", "/api/v1/appliances/"+ids["Kiosk A"], nil); m["name"] != "Kiosk A" || m["site"] != nil {
		t.Errorf("after a refused change: %v", m)
	}
	if status, _ := root("POST", "/appliances/"+ids["Kiosk A"]+"/rename", url.Values{"name": {"Kiosk A"}, "site": {"store-12"}}); status != 303 {
		t.Fatalf("setting the site in the console = %d, want 303", status)
	}
	m := h.mustCall(200, "PATCH", "/api/v1/appliances/"+ids["Kiosk B"], map[string]any{"site": "store-14"})
	if m["site"] != "store-14" || m["name"] != "Kiosk B" {
		t.Errorf("PATCH site = %v", m)
	}
	if m := h.mustCall(400, "PATCH", "/api/v1/appliances/"+ids["Kiosk B"], map[string]any{}); m["error"] != `nothing to change: give "name", "site" or both` {
		t.Errorf("PATCH {} = %v", m)
	}
	if m := h.mustCall(400, "PATCH", "/api/v1/appliances/"+ids["Kiosk B"], map[string]any{"name": "Kiosk C", "site": strings.Repeat("s", 65)}); m["error"] != "the site name is over 64 characters" {
		t.Errorf("PATCH long site = %v", m)
	}
	if m := h.mustCall(200, "GET", "/api/v1/appliances/"+ids["Kiosk B"], nil); m["name"] != "Kiosk B" {
		t.Errorf("a PATCH refused for its site renamed the appliance: %v", m)
	}
	if _, page := root("GET", "/appliances/"+ids["Kiosk A"], nil); !strings.Contains(page, "Site: store-12") {
		t.Errorf("the appliance page does not show its site")
	}

	// The store-12 help desk sees Kiosk A only, and offers only it.
	hd := h.consoleAs("hd12", false, "helpdesk", []string{"store-12"})
	status, page = hd("GET", "/appliances", nil)
	if status != 200 || !strings.Contains(page, "Kiosk A") || strings.Contains(page, "Kiosk B") {
		t.Errorf("site-limited appliances page = %d; Kiosk A shown %v, Kiosk B shown %v", status, strings.Contains(page, "Kiosk A"), strings.Contains(page, "Kiosk B"))
	}
	if strings.Contains(page, `href="/settings"`) || strings.Contains(page, `href="/webhooks"`) || !strings.Contains(page, `href="/users"`) {
		t.Errorf("the help desk's navigation offers what it cannot use, or not its users")
	}
	h.mustCall(201, "POST", "/api/v1/users", map[string]any{"username": "staff"})
	d := h.mustCall(201, "POST", "/api/v1/users/staff/mfa-devices", map[string]any{"name": "Token"})
	devPage := "/users/staff/mfa-devices/" + itoa(int64(d["id"].(float64)))
	status, page = hd("GET", devPage+"/configure", nil)
	if status != 200 || !strings.Contains(page, "Kiosk A") || strings.Contains(page, "Kiosk B") {
		t.Errorf("site-limited configure page = %d; Kiosk A offered %v, Kiosk B offered %v", status, strings.Contains(page, "Kiosk A"), strings.Contains(page, "Kiosk B"))
	}
	status, page = hd("POST", devPage+"/send", url.Values{"appliance": {ids["Kiosk B"]}})
	if status != 403 || !strings.Contains(page, "This appliance belongs to site store-14; you may use only the appliances of store-12.") {
		t.Errorf("sending to another site's appliance = %d %s", status, firstLine(page))
	}
	if status, _ = hd("POST", devPage+"/send", url.Values{"appliance": {ids["Kiosk A"]}}); status != 303 {
		t.Errorf("sending to the site's appliance = %d, want 303", status)
	}
	if status, page = hd("GET", "/appliances/"+ids["Kiosk B"], nil); status != 403 {
		t.Errorf("another site's appliance page = %d %s, want 403", status, firstLine(page))
	}

	var sites []string
	for _, e := range h.mustCall(200, "GET", "/api/v1/audit", nil)["entries"].([]any) {
		if e := e.(map[string]any); e["type"] == "appliance.site" {
			sites = append(sites, e["detail"].(string))
		}
	}
	if want := []string{`"Kiosk A" from site "" to "store-12"`, `"Kiosk B" from site "" to "store-14"`}; !slices.Equal(sites, want) {
		t.Errorf("appliance.site audit = %q, want %q", sites, want)
	}
}

// TestConsoleHidesWhatRoleCannotUse: the console leaves out the forms and
// buttons a role would be refused (the refusal itself is TestRouteRoles').
func TestConsoleHidesWhatRoleCannotUse(t *testing.T) {
	h := newHarness(t, storeSQLite(t), nil)
	h.mustCall(201, "POST", "/api/v1/users", map[string]any{"username": "staff"})
	aud := h.consoleAs("aud", false, "auditor", nil)
	hd := h.consoleAs("hd", false, "helpdesk", nil)
	for _, tc := range []struct {
		as            func(string, string, url.Values) (int, string)
		who, path     string
		shown, hidden []string
	}{
		{aud, "auditor", "/users", []string{`href="/audit"`, `href="/settings"`}, []string{"Create user"}},
		{aud, "auditor", "/users/staff", nil, []string{"Set password", "Disable user"}},
		{aud, "auditor", "/users/staff/mfa-devices", nil, []string{"Register MFA device"}},
		{aud, "auditor", "/settings", nil, []string{"Save settings"}},
		{aud, "auditor", "/webhooks", nil, []string{"Add an endpoint"}},
		{aud, "auditor", "/appliances", nil, []string{"Pair appliance"}},
		{hd, "helpdesk", "/users/staff/mfa-devices", []string{"Register MFA device"}, []string{`href="/settings"`, `href="/audit"`}},
		{hd, "helpdesk", "/users/staff", nil, []string{"Set password"}},
	} {
		status, page := tc.as("GET", tc.path, nil)
		if status != 200 {
			t.Errorf("%s GET %s = %d %s", tc.who, tc.path, status, firstLine(page))
			continue
		}
		for _, s := range tc.shown {
			if !strings.Contains(page, s) {
				t.Errorf("%s GET %s does not show %q", tc.who, tc.path, s)
			}
		}
		for _, s := range tc.hidden {
			if strings.Contains(page, s) {
				t.Errorf("%s GET %s shows %q", tc.who, tc.path, s)
			}
		}
	}
}
