package server

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/totpbox/totpbox/enroll/server/core"
	"github.com/totpbox/totpbox/enroll/store"
)

// routeRecorder collects the patterns the console and the API register.
type routeRecorder struct{ patterns []string }

func (m *routeRecorder) HandleFunc(pattern string, _ func(http.ResponseWriter, *http.Request)) {
	m.patterns = append(m.patterns, pattern)
}

// The columns of the route × role table: people signed in to the console
// with a role (site12 is a help desk limited to site store-12), and API
// tokens with a role. A verify token has no console session.
const (
	rAdmin    = "admin"
	rHelpdesk = "helpdesk"
	rAuditor  = "auditor"
	rVerify   = "verify"
	rSite12   = "site12"
)

// public is every column: pages anyone reaches, signed in or not.
var public = []string{rAdmin, rHelpdesk, rAuditor, rVerify, rSite12}

// signedIn is every person signed in to the console, whatever their role.
var signedIn = []string{rAdmin, rHelpdesk, rAuditor, rSite12}

var (
	readers  = []string{rAdmin, rHelpdesk, rAuditor, rSite12}
	helpers  = []string{rAdmin, rHelpdesk, rSite12}
	auditors = []string{rAdmin, rAuditor}
	admins   = []string{rAdmin}
)

// routeRoles is who may use each route of the console and the admin API;
// every other column must get a 403 naming the role needed (the console
// without a session sends a verify token's holder to sign in instead).
// The site-limited help desk may read an appliance of another site
// (store-14, the one the table uses) nowhere, nor send to it. API tokens
// carry no sites: the API's rows test the four token roles.
var routeRoles = map[string][]string{
	"GET /static/{file}":                public,
	"GET /{$}":                          public,
	"GET /signin":                       public,
	"POST /signin":                      public,
	"GET /signin/code":                  public,
	"POST /signin/code":                 public,
	"POST /signout":                     public,
	"GET /portal":                       signedIn,
	"GET /users":                        readers,
	"GET /users/new":                    admins,
	"POST /users":                       admins,
	"GET /users/{username}":             readers,
	"POST /users/{username}/disable":    admins,
	"POST /users/{username}/enable":     admins,
	"POST /users/{username}/password":   admins,
	"GET /users/{username}/mfa-devices": readers,
	"POST /users/{username}/mfa-devices/{id}/send": {rAdmin, rHelpdesk},
	"GET /settings":              auditors,
	"POST /settings":             admins,
	"GET /audit":                 auditors,
	"GET /audit.csv":             auditors,
	"GET /webhooks":              auditors,
	"POST /webhooks":             admins,
	"POST /webhooks/{id}/delete": admins,
	"POST /webhooks/deliveries/{id}/redeliver": admins,
	"GET /appliances":                          readers,
	"GET /hardware-tokens":                     readers,
	"POST /hardware-tokens/assign":             helpers,
	"POST /appliances":                         admins,
	"GET /appliances/{appliance}":              {rAdmin, rHelpdesk, rAuditor},
	"GET /appliances/{appliance}/rename":       admins,
	"POST /appliances/{appliance}/rename":      admins,
	"GET /appliances/{appliance}/unpair":       admins,
	"POST /appliances/{appliance}/unpair":      admins,
	"GET /appliances/{appliance}/forget":       admins,
	"POST /appliances/{appliance}/forget":      admins,
	"GET /appliances/{appliance}/replace":      admins,
	"POST /appliances/{appliance}/replace":     admins,
	"POST /portal/mfa-devices/{id}/send":       helpers,

	"POST /api/v1/users":                                     admins,
	"GET /api/v1/users/{username}":                           readers,
	"POST /api/v1/users/{username}/mfa-devices":              helpers,
	"GET /api/v1/users/{username}/mfa-devices":               readers,
	"DELETE /api/v1/users/{username}/mfa-devices/{id}":       helpers,
	"POST /api/v1/users/{username}/mfa-devices/{id}/confirm": helpers,
	"POST /api/v1/users/{username}/mfa-devices/{id}/send":    helpers,
	"POST /api/v1/users/{username}/mfa-devices/{id}/resync":  helpers,
	"GET /api/v1/appliances":                                 readers,
	"POST /api/v1/appliances":                                admins,
	"GET /api/v1/appliances/{appliance}":                     readers,
	"PATCH /api/v1/appliances/{appliance}":                   admins,
	"DELETE /api/v1/appliances/{appliance}":                  admins,
	"POST /api/v1/appliances/{appliance}/replace":            admins,
	"GET /api/v1/appliances/{appliance}/replacements":        readers,
	"GET /api/v1/hardware-tokens":                            readers,
	"POST /api/v1/hardware-tokens/{serial}/assign":           helpers,
	"POST /api/v1/verify":                                    {rAdmin, rVerify},
	"GET /api/v1/audit":                                      auditors,
	"POST /api/v1/webhooks":                                  admins,
	"GET /api/v1/webhooks":                                   auditors,
	"GET /api/v1/webhooks/{id}":                              auditors,
	"PATCH /api/v1/webhooks/{id}":                            admins,
	"DELETE /api/v1/webhooks/{id}":                           admins,
	"/api/":                                                  public,
}

// portalDevice lists the device pages the console serves under both
// /users/{username} and /portal: help desk and admins on a user's
// devices; anyone signed in on their own.
var portalDevice = []string{
	"GET %s/mfa-devices/new", "POST %s/mfa-devices", "GET %s/mfa-devices/{id}/configure",
	"POST %s/mfa-devices/{id}/confirm", "GET %s/mfa-devices/{id}/qr.png", "GET %s/mfa-devices/{id}/status",
	"GET %s/mfa-devices/{id}/rename", "POST %s/mfa-devices/{id}/rename", "GET %s/mfa-devices/{id}/resync",
	"POST %s/mfa-devices/{id}/resync", "POST %s/mfa-devices/{id}/unlock", "GET %s/mfa-devices/{id}/delete",
	"POST %s/mfa-devices/{id}/delete",
}

func init() {
	for _, p := range portalDevice {
		routeRoles[strings.Replace(p, "%s", "/users/{username}", 1)] = helpers
		routeRoles[strings.Replace(p, "%s", "/portal", 1)] = signedIn
	}
}

// TestRouteRoles calls every route of the console and the admin API as
// each role: where the table refuses, the answer is a 403 with a plain
// message naming the role (or the site) needed; where it allows, it is
// not a 403. A route without a row fails, so a new route needs one.
func TestRouteRoles(t *testing.T) {
	h := newHarness(t, storeSQLite(t), nil)
	ctx := context.Background()
	var rec routeRecorder
	h.srv.console.Register(&rec)
	h.srv.api.Register(&rec)
	for _, p := range rec.patterns {
		if _, ok := routeRoles[p]; !ok {
			t.Errorf("route %q has no row in routeRoles: say which roles may use it", p)
		}
	}
	for p := range routeRoles {
		if !slices.Contains(rec.patterns, p) {
			t.Errorf("routeRoles has a row for %q, which is not a route", p)
		}
	}

	st, err := h.srv.Core().Settings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st.SelfService, st.RequireAdminMFA = true, false
	if err := h.srv.Core().SaveSettings(ctx, st); err != nil {
		t.Fatal(err)
	}

	// staff has an active device and a pending one to send; two
	// appliances are paired, one at each store.
	_, devID := h.registered("staff", "Phone")
	m := h.mustCall(201, "POST", "/api/v1/users/staff/mfa-devices", map[string]any{"name": "Kiosk token"})
	sendID := int64(m["id"].(float64))
	apps := map[string]string{}
	for _, site := range []string{"store-12", "store-14"} {
		a := h.newAppliance()
		m := h.mustCall(201, "POST", "/api/v1/appliances", map[string]any{"code": a.pairingCode(), "name": "Kiosk " + site})
		apps[site] = m["id"].(string)
		m = h.mustCall(200, "PATCH", "/api/v1/appliances/"+apps[site], map[string]any{"site": site})
		if m["site"] != site {
			t.Fatalf("PATCH site = %v, want %s", m, site)
		}
	}

	// One session per console role, and one token per API role.
	sessions, cookies := map[string]store.Session{}, map[string]string{}
	for _, p := range []struct {
		col, user, role string
		admin           bool
		sites           []string
	}{
		{rAdmin, "root", "", true, nil},
		{rHelpdesk, "hd", "helpdesk", false, nil},
		{rAuditor, "aud", "auditor", false, nil},
		{rSite12, "hd12", "helpdesk", false, []string{"store-12"}},
	} {
		u, err := h.srv.Core().CreateUser(ctx, core.System, core.NewUser{Username: p.user, Admin: p.admin})
		if err != nil {
			t.Fatal(err)
		}
		v := p.col + "-session-cookie-value"
		sessions[p.col] = store.Session{Hash: core.HashToken(v), UserID: u.ID, Created: h.clock.Now(),
			ExpiresAt: h.clock.Now().Add(time.Hour), CSRF: "csrf-" + p.col, Role: p.role, Sites: p.sites}
		cookies[p.col] = v
	}
	// session (re)makes col's session: POST /signout ends it.
	session := func(col string) {
		if err := h.st.CreateSession(ctx, sessions[col]); err != nil && !errors.Is(err, store.ErrConflict) {
			t.Fatal(err)
		}
	}
	tokens := map[string]string{rAdmin: h.token}
	for _, r := range []core.Role{core.RoleHelpdesk, core.RoleAuditor, core.RoleVerify} {
		tokens[string(r)] = h.roleToken("t-"+string(r), r)
	}

	path := func(pattern string) (string, string) {
		method, p, ok := strings.Cut(pattern, " ")
		if !ok {
			method, p = "GET", pattern
		}
		id := itoa(devID)
		switch {
		case strings.HasSuffix(p, "/{id}/send"):
			id = itoa(sendID)
		case strings.Contains(p, "webhooks/{id}"):
			id = "wh_nothere"
		case strings.Contains(p, "deliveries/{id}"):
			id = "999"
		}
		p = strings.NewReplacer("{username}", "staff", "{id}", id, "{appliance}", apps["store-14"], "{serial}", "SN-1",
			"{file}", "style.css", "{$}", "").Replace(p)
		if p == "/api/" {
			p = "/api/v1/nothing"
		}
		return method, p
	}

	// The columns run least powerful first, the admin last, so that what
	// an allowed role changes (a device deleted, an appliance forgotten)
	// happens after the refusals that need it there.
	cols := []string{rVerify, rAuditor, rSite12, rHelpdesk, rAdmin}
	patterns := slices.Clone(rec.patterns)
	sort.Strings(patterns)
	for _, col := range cols {
		for _, pattern := range patterns {
			method, p := path(pattern)
			api := strings.HasPrefix(p, "/api/")
			if api && col == rSite12 {
				continue // tokens carry no sites
			}
			var req *http.Request
			switch {
			case api:
				var body *strings.Reader
				if method != "GET" && method != "DELETE" {
					body = strings.NewReader(`{}`)
				} else {
					body = strings.NewReader("")
				}
				req = httptest.NewRequest(method, p, body)
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+tokens[col])
			default:
				form := url.Values{"csrf": {"csrf-" + col}, "appliance": {apps["store-14"]}}
				req = httptest.NewRequest(method, p, strings.NewReader(form.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				if v, ok := cookies[col]; ok {
					session(col)
					req.AddCookie(&http.Cookie{Name: "totpserver_session", Value: v})
				}
			}
			w := httptest.NewRecorder()
			h.srv.Handler().ServeHTTP(w, req)
			body := w.Body.String()
			allowed := slices.Contains(routeRoles[pattern], col)
			// The send route refuses the site-limited help desk for the
			// appliance's site, not for the role.
			switch {
			case allowed && w.Code == http.StatusForbidden:
				t.Errorf("%s as %s = 403 %s, want allowed", pattern, col, firstLine(body))
			case !allowed && !api && col == rVerify:
				// No console session: sent to sign in, or told the session ended.
				if loc := w.Header().Get("Location"); !(w.Code == http.StatusSeeOther && loc == "/signin") && w.Code != http.StatusUnauthorized {
					t.Errorf("%s without a session = %d (Location %q), want 303 to /signin or 401", pattern, w.Code, loc)
				}
			case !allowed && w.Code != http.StatusForbidden:
				t.Errorf("%s as %s = %d %s, want 403", pattern, col, w.Code, firstLine(body))
			case !allowed && !strings.Contains(body, "role") && !strings.Contains(body, "belongs to site store-14"):
				t.Errorf("%s as %s: 403 without naming the role or site needed: %s", pattern, col, firstLine(body))
			}
		}
	}
}

// firstLine is the JSON error or the HTML page's error line, for messages.
func firstLine(body string) string {
	if _, after, ok := strings.Cut(body, `role="alert">`); ok {
		body, _, _ = strings.Cut(after, "</p>")
	}
	if len(body) > 200 {
		body = body[:200]
	}
	return strings.TrimSpace(body)
}
