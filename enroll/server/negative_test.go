package server

import (
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/totpbox/totpbox/enroll/server/core"
	"github.com/totpbox/totpbox/enroll/store"
	"github.com/totpbox/totpbox/enroll/store/storetest"
)

// postRoutes is every POST route of the console and the portal, with
// path values filled in.
var postRoutes = []string{
	"/signout",
	"/users",
	"/users/mia/disable",
	"/users/mia/enable",
	"/users/mia/password",
	"/users/mia/mfa-devices/1/unlock",
	"/users/mia/mfa-devices/1/send",
	"/settings",
	"/appliances",
	"/appliances/0123456789abcdef/rename",
	"/appliances/0123456789abcdef/unpair",
	"/appliances/0123456789abcdef/forget",
	"/users/mia/mfa-devices",
	"/users/mia/mfa-devices/1/confirm",
	"/users/mia/mfa-devices/1/rename",
	"/users/mia/mfa-devices/1/resync",
	"/users/mia/mfa-devices/1/delete",
	"/portal/mfa-devices",
	"/portal/mfa-devices/1/confirm",
	"/portal/mfa-devices/1/rename",
	"/portal/mfa-devices/1/resync",
	"/portal/mfa-devices/1/delete",
}

// TestNegativeHTTP is the negative suite of the HTTP surface: requests an
// attacker would send, each refused, on both stores.
func TestNegativeHTTP(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) store.Store) {
		h := newHarness(t, open(t), nil)
		h.admin()
		if _, err := h.srv.Core().CreateUser(t.Context(), core.System, core.NewUser{Username: "mia", Password: "mia password"}); err != nil {
			t.Fatal(err)
		}
		admin := h.browser()
		admin.signIn("root", adminPassword, nil, h.clock)

		t.Run("CSRF: signed-in admin, form without the token", func(t *testing.T) {
			for _, p := range postRoutes {
				if p == "/signout" {
					continue // signing out needs no token: the worst a forger does is sign you out
				}
				if status, _, _ := admin.post(p, url.Values{"name": {"x"}}, ""); status != http.StatusForbidden {
					t.Errorf("POST %s without a CSRF token = %d, want 403", p, status)
				}
			}
		})
		t.Run("CSRF: cross-site request", func(t *testing.T) {
			for _, p := range append(postRoutes, "/signin", "/signin/code") {
				req, _ := http.NewRequest("POST", admin.base+p, strings.NewReader("name=x"))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.Header.Set("Sec-Fetch-Site", "cross-site")
				resp, err := admin.c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusForbidden {
					t.Errorf("cross-site POST %s = %d, want 403", p, resp.StatusCode)
				}
			}
		})
		t.Run("IDOR: a user at the console's and another user's pages", func(t *testing.T) {
			b := h.browser()
			page := b.signIn("mia", "mia password", nil, h.clock)
			tok := csrf(t, page)
			for _, p := range []string{"/users/root/disable", "/users/root/password", "/settings", "/appliances", "/users/root/mfa-devices"} {
				if status, _, _ := b.post(p, url.Values{"name": {"x"}, "password": {"0123456789abc"}}, tok); status != http.StatusForbidden && status != http.StatusNotFound {
					t.Errorf("mia POST %s = %d, want 403 or 404", p, status)
				}
			}
			if u, err := h.st.UserByName(t.Context(), "root"); err != nil || u.Disabled {
				t.Fatalf("root after mia's attempts: %+v %v", u, err)
			}
		})
		t.Run("API without or with a bad token", func(t *testing.T) {
			for _, tok := range []string{"", "not-a-token"} {
				if status, _ := h.callRaw("GET", "/api/v1/users/root", nil, tok); status != http.StatusUnauthorized {
					t.Errorf("GET /api/v1/users/root with token %q = %d, want 401", tok, status)
				}
			}
		})
		big := `{"username":"x"}` + strings.Repeat(" ", 70<<10)
		for _, tt := range []struct {
			name, path, ctype, body string
			chunked                 bool
			want                    int
		}{
			{"API: 70 KB of trailing whitespace", "/api/v1/users", "application/json", big, false, 413},
			{"API: 70 KB chunked", "/api/v1/users", "application/json", big, true, 413},
			{"API: malformed JSON", "/api/v1/users", "application/json", `{"username":`, false, 400},
			{"API: unknown field", "/api/v1/users", "application/json", `{"username":"x","admin2":true}`, false, 400},
			{"API: two objects", "/api/v1/users", "application/json", `{"username":"x"}{"username":"y"}`, false, 400},
			{"API: not JSON", "/api/v1/users", "text/plain", `username=x`, false, 415},
			{"API: display name with a bidi override", "/api/v1/users", "application/json", `{"username":"eve","display_name":"admin\u202e"}`, false, 400},
			{"API: display name with an isolate", "/api/v1/users", "application/json", `{"username":"eve","display_name":"a\u2066b"}`, false, 400},
			{"API: display name with a zero-width joiner", "/api/v1/users", "application/json", `{"username":"eve","display_name":"a\u200db"}`, false, 400},
			{"verify: 70 KB", "/api/v1/verify", "application/json", big, false, 413},
			{"console: 70 KB sign-in form", "/signin", "application/x-www-form-urlencoded", "username=root&password=" + strings.Repeat("a", 70<<10), false, 413},
			{"console: 70 KB sign-in form, chunked", "/signin", "application/x-www-form-urlencoded", "username=root&password=" + strings.Repeat("a", 70<<10), true, 413},
			{"console: small sign-in form, chunked", "/signin", "application/x-www-form-urlencoded", "username=nobody&password=guess", true, 401},
			{"appliance: 70 KB ack, chunked", "/api/v1/appliance/0123456789abcdef/ack", "application/json", big, true, 413},
			{"appliance: 70 KB ack", "/api/v1/appliance/0123456789abcdef/ack", "application/json", big, false, 413},
		} {
			t.Run(tt.name, func(t *testing.T) {
				var body io.Reader = strings.NewReader(tt.body)
				if tt.chunked {
					body = io.MultiReader(body) // unknown length: sent chunked
				}
				req := httptest.NewRequest("POST", tt.path, body)
				if tt.chunked {
					req.ContentLength = -1
				}
				req.Header.Set("Authorization", "Bearer "+h.token)
				req.Header.Set("Content-Type", tt.ctype)
				rec := httptest.NewRecorder()
				h.srv.Handler().ServeHTTP(rec, req)
				if rec.Code != tt.want {
					t.Errorf("POST %s = %d %s, want %d", tt.path, rec.Code, rec.Body.String(), tt.want)
				}
			})
		}
		t.Run("HSTS over TLS only", func(t *testing.T) {
			for _, tls := range []*tls.ConnectionState{nil, {}} {
				req := httptest.NewRequest("GET", "/signin", nil)
				req.TLS = tls
				rec := httptest.NewRecorder()
				h.srv.Handler().ServeHTTP(rec, req)
				got := rec.Header().Get("Strict-Transport-Security")
				if (tls != nil) != strings.HasPrefix(got, "max-age=") {
					t.Errorf("TLS %v: Strict-Transport-Security %q", tls != nil, got)
				}
			}
		})
	})
}
