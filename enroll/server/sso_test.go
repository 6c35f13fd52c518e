package server

import (
	"context"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/totpbox/totpbox/enroll"
	"github.com/totpbox/totpbox/enroll/server/core"
	"github.com/totpbox/totpbox/enroll/server/oidc"
	"github.com/totpbox/totpbox/enroll/server/oidc/oidctest"
	"github.com/totpbox/totpbox/enroll/store"
	"github.com/totpbox/totpbox/internal/testkit"
)

// The provider's people: three with console roles by their groups, one
// whose groups give no role (a portal user), one without a groups claim
// and one in no mapped group with no user here.
var ssoAccounts = map[string][]string{
	"alice":    {"totp-admins", "staff"},
	"hank":     {"helpdesk-12", "staff"},
	"ada":      {"auditors"},
	"pat":      {"staff"},
	"nog":      nil,
	"stranger": {"staff"},
}

var ssoRoleMap = []oidc.RoleMapping{
	{Group: "totp-admins", Role: "admin"},
	{Group: "helpdesk-12", Role: "helpdesk@store-12"},
	{Group: "auditors", Role: "auditor"},
}

// ssoIDTokenTTL is the provider's ID token lifetime: shorter than a
// sign-in's state lives, so a token can expire while its state does not.
const ssoIDTokenTTL = 2 * time.Minute

// ssoRig is a server signing in through a real OpenID Provider, on a real
// listener whose address the provider knows as its client's redirect URL.
type ssoRig struct {
	*harness
	op    *oidctest.OP
	url   string
	other oidctest.Client
}

type ssoOptions struct {
	localFrom  []string
	allowLocal bool
	issuer     string // instead of the provider's: an unreachable one
}

func newSSORig(t testing.TB, o ssoOptions) *ssoRig {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	client := oidctest.Client{ID: "totpbox", Secret: "totpbox client secret", RedirectURL: base + "/signin/oidc/callback", PostLogoutURL: base + "/signin"}
	r := &ssoRig{url: base, other: oidctest.Client{ID: "other-app", Secret: "other secret", RedirectURL: "http://127.0.0.1:1/callback"}}
	issuer := o.issuer
	if issuer == "" {
		r.op = oidctest.Start(t, oidctest.Options{Clients: []oidctest.Client{client, r.other}, Accounts: ssoAccounts, IDTokenTTL: ssoIDTokenTTL})
		issuer = r.op.Issuer
	}
	secret := filepath.Join(t.TempDir(), "client-secret")
	if err := os.WriteFile(secret, []byte(client.Secret), 0o600); err != nil {
		t.Fatal(err)
	}
	var h *harness
	rp, err := oidc.New(oidc.Config{
		Issuer: issuer, ClientID: client.ID, ClientSecretFile: secret, RedirectURL: client.RedirectURL,
		Scopes: []string{"openid", "profile", "groups"}, RoleMap: ssoRoleMap, DisplayName: "Test IdP",
		AllowLocalSignin: o.allowLocal, LocalSigninFrom: o.localFrom,
	}, oidc.Options{Now: func() time.Time { return h.clock.Now() }, Retry: time.Hour, Logger: testkit.Quiet()})
	if err != nil {
		t.Fatal(err)
	}
	if o.issuer == "" {
		if err := rp.Discover(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	h = newHarness(t, storeSQLite(t), func(c *Config) { c.OIDC = rp })
	// ID tokens carry the provider's real times.
	h.clock.Set(time.Now())
	r.harness = h
	ts := httptest.NewUnstartedServer(h.srv.Handler())
	ts.Listener.Close()
	ts.Listener = ln
	ts.Start()
	t.Cleanup(ts.Close)
	return r
}

// client is a cookie-keeping HTTP client.
func (r *ssoRig) client() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 20 * time.Second}
}

// begin starts a sign-in as account at the server and returns the
// callback URL the provider sends the browser back to, not yet visited.
func (r *ssoRig) begin(t *testing.T, c *http.Client, account string) *url.URL {
	t.Helper()
	back, err := r.op.SignIn(c, r.url+"/signin/oidc", account)
	if err != nil {
		t.Fatalf("sign in as %s at the provider: %v", account, err)
	}
	if back.Path != "/signin/oidc/callback" {
		t.Fatalf("sent back to %s, want the callback", back)
	}
	return back
}

// visit GETs u following redirects and returns the final status, path and
// body.
func visit(t *testing.T, c *http.Client, u string) (int, string, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp.StatusCode, resp.Request.URL.Path, b.String()
}

// audits returns the audit events after id.
func (r *ssoRig) audits(t *testing.T, after int64) []store.AuditEvent {
	t.Helper()
	evs, err := r.st.AuditEvents(context.Background(), 1000, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []store.AuditEvent
	for _, e := range evs {
		if e.ID > after {
			out = append(out, e)
		}
	}
	return out
}

func (r *ssoRig) lastAudit(t *testing.T) int64 {
	t.Helper()
	evs, err := r.st.AuditEvents(context.Background(), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) == 0 {
		return 0
	}
	return evs[0].ID
}

// TestSSOSignIn signs each role in through the provider over HTTP: the
// session has the role (and sites) of the groups, the audit says so.
func TestSSOSignIn(t *testing.T) {
	r := newSSORig(t, ssoOptions{allowLocal: true})
	for _, tc := range []struct {
		account, detail string
		role            string
		sites           []string
	}{
		{"alice", "oidc as admin", "admin", nil},
		{"hank", "oidc as helpdesk@store-12", "helpdesk", []string{"store-12"}},
		{"ada", "oidc as auditor", "auditor", nil},
	} {
		t.Run(tc.account, func(t *testing.T) {
			c := r.client()
			mark := r.lastAudit(t)
			status, path, body := visit(t, c, r.begin(t, c, tc.account).String())
			if status != 200 || path != "/users" {
				t.Fatalf("after the callback: %d at %s, want /users:\n%.500s", status, path, body)
			}
			srv, _ := url.Parse(r.url)
			var sess store.Session
			for _, ck := range c.Jar.Cookies(srv) {
				if ck.Name == "totpserver_session" {
					sess, _ = r.st.SessionByHash(context.Background(), core.HashToken(ck.Value))
				}
			}
			if sess.Role != tc.role || !slices.Equal(sess.Sites, tc.sites) || sess.MFAPending {
				t.Fatalf("session: role %q sites %v pending %v, want role %q sites %v", sess.Role, sess.Sites, sess.MFAPending, tc.role, tc.sites)
			}
			evs := r.audits(t, mark)
			found := false
			for _, e := range evs {
				found = found || e.Action == "signin" && e.Actor == tc.account && e.Detail == tc.detail
			}
			if !found {
				t.Fatalf("audit after the sign-in: %+v, want signin by %s %q", evs, tc.account, tc.detail)
			}
		})
	}
}

// TestSSORefusals: each bad answer is refused with one audit line and
// signs nobody in.
func TestSSORefusals(t *testing.T) {
	r := newSSORig(t, ssoOptions{allowLocal: true})
	otherToken, err := r.op.IDToken(r.client(), r.other, "alice")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		// callback returns the URL to visit with c, after any mischief.
		callback func(t *testing.T, c *http.Client) string
		reason   string
	}{
		{"tampered state", func(t *testing.T, c *http.Client) string {
			u := r.begin(t, c, "alice")
			q := u.Query()
			q.Set("state", q.Get("state")+"x")
			u.RawQuery = q.Encode()
			return u.String()
		}, "the state sent back is not this browser's (tampered)"},
		{"tampered state cookie", func(t *testing.T, c *http.Client) string {
			u := r.begin(t, c, "alice")
			srv, _ := url.Parse(r.url)
			for _, ck := range c.Jar.Cookies(&url.URL{Scheme: "http", Host: srv.Host, Path: "/signin/oidc/callback"}) {
				if ck.Name == "totpserver_oidc" {
					c.Jar.SetCookies(srv, []*http.Cookie{{Name: ck.Name, Value: "A" + ck.Value[1:], Path: "/signin"}})
				}
			}
			return u.String()
		}, "the sign-in state cookie is tampered with"},
		{"replayed callback", func(t *testing.T, c *http.Client) string {
			u := r.begin(t, c, "alice")
			srv, _ := url.Parse(r.url)
			cookies := c.Jar.Cookies(&url.URL{Scheme: "http", Host: srv.Host, Path: "/signin/oidc/callback"})
			if status, path, _ := visit(t, c, u.String()); status != 200 || path != "/users" {
				t.Fatalf("first visit of the callback: %d at %s", status, path)
			}
			// Someone who took the browser's cookies and the URL replays
			// them in a browser of their own.
			c2 := r.client()
			for _, ck := range cookies {
				if ck.Name == "totpserver_oidc" {
					c2.Jar.SetCookies(srv, []*http.Cookie{{Name: ck.Name, Value: ck.Value, Path: "/signin"}})
				}
			}
			*c = *c2
			return u.String()
		}, "the state was used before (replayed)"},
		{"replayed code with a fresh state", func(t *testing.T, c *http.Client) string {
			old := r.begin(t, c, "alice")
			if status, path, _ := visit(t, c, old.String()); status != 200 || path != "/users" {
				t.Fatalf("first visit of the callback: %d at %s", status, path)
			}
			c2 := r.client()
			fresh := r.begin(t, c2, "alice")
			q := fresh.Query()
			q.Set("code", old.Query().Get("code"))
			fresh.RawQuery = q.Encode()
			*c = *c2
			return fresh.String()
		}, "the provider refused the code: invalid_grant"},
		{"token for another audience", func(t *testing.T, c *http.Client) string {
			u := r.begin(t, c, "alice")
			r.op.SwapNextIDToken(otherToken)
			return u.String()
		}, "the ID token is for another client, not totpbox"},
		{"expired token", func(t *testing.T, c *http.Client) string {
			u := r.begin(t, c, "alice")
			r.clock.Advance(ssoIDTokenTTL + time.Minute)
			return u.String()
		}, "the ID token expired at "},
		{"missing groups claim", func(t *testing.T, c *http.Client) string {
			return r.begin(t, c, "nog").String()
		}, "the ID token has no groups claim"},
		{"no role and no user", func(t *testing.T, c *http.Client) string {
			return r.begin(t, c, "stranger").String()
		}, "no group in role_map and no user of that name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := r.client()
			u := tc.callback(t, c)
			mark := r.lastAudit(t)
			status, path, body := visit(t, c, u)
			r.clock.Set(time.Now())
			if status != http.StatusForbidden || path != "/signin/oidc/callback" {
				t.Fatalf("callback: %d at %s, want 403 there:\n%.500s", status, path, body)
			}
			evs := r.audits(t, mark)
			if len(evs) != 1 || evs[0].Action != "signin.fail" || !strings.HasPrefix(evs[0].Detail, tc.reason) {
				t.Fatalf("audit: %+v, want one signin.fail %q", evs, tc.reason)
			}
			if _, path, _ := visit(t, c, r.url+"/users"); path != "/signin" {
				t.Fatalf("after a refused sign-in /users went to %s, want /signin: someone is signed in", path)
			}
		})
	}
}

// TestSSOPortalUser: a user whose groups give no role signs in through
// the provider and then types a code from their device, as after a
// password; with allow_local_signin off their password is refused.
func TestSSOPortalUser(t *testing.T) {
	r := newSSORig(t, ssoOptions{allowLocal: false})
	k, _ := r.registered("pat", "Pat phone")
	mark := r.lastAudit(t)
	c := r.client()
	status, path, body := visit(t, c, r.begin(t, c, "pat").String())
	if status != 200 || path != "/signin/code" {
		t.Fatalf("after the callback: %d at %s, want the code step:\n%.500s", status, path, body)
	}
	b := &browser{t: t, base: r.url, c: c}
	status, path, body = b.post("/signin/code", url.Values{"code": {enroll.Code(k, r.clock.Now())}}, csrf(t, body))
	if status != 200 || path != "/portal" {
		t.Fatalf("after the code: %d at %s, want the portal:\n%.500s", status, path, body)
	}
	if status, _, _ := b.get("/users"); status != http.StatusForbidden {
		t.Fatalf("GET /users from a portal session = %d, want 403", status)
	}
	var signins []string
	for _, e := range r.audits(t, mark) {
		if e.Action == "signin" {
			signins = append(signins, e.Detail)
		}
	}
	if len(signins) != 1 || signins[0] != "oidc and MFA code" {
		t.Fatalf("signin audit lines: %q, want one \"oidc and MFA code\"", signins)
	}
	// Local passwords are off for users.
	pat, err := r.st.UserByName(context.Background(), "pat")
	if err != nil {
		t.Fatal(err)
	}
	if err := r.srv.Core().SetPassword(context.Background(), core.Actor{Name: "test", Role: core.RoleAdmin}, pat, "pat password 1"); err != nil {
		t.Fatal(err)
	}
	b2 := r.browser()
	status, _, body = b2.post("/signin", url.Values{"username": {"pat"}, "password": {"pat password 1"}}, "")
	if status != http.StatusForbidden || !strings.Contains(body, "Local passwords are off here") {
		t.Fatalf("local password sign-in with allow_local_signin false: %d:\n%.500s", status, body)
	}
}

// TestSSOBreakGlass: with the provider unreachable the server starts, the
// sign-in page says single sign-on is unavailable, and a local admin
// signs in with a password and an MFA code, audited as break glass; an
// admin without an MFA device is refused, and so is any local sign-in
// from outside local_signin_from.
func TestSSOBreakGlass(t *testing.T) {
	r := newSSORig(t, ssoOptions{issuer: "http://127.0.0.1:1", localFrom: []string{"127.0.0.0/8"}})
	r.admin()
	b := &browser{t: t, base: r.url, c: r.client()}
	status, _, body := b.get("/signin")
	if status != 200 || !strings.Contains(body, "Single sign-on is unavailable right now") || !strings.Contains(body, `action="/signin"`) {
		t.Fatalf("sign-in page with the provider down: %d:\n%.800s", status, body)
	}
	if status, _, _ := b.get("/signin/oidc"); status != http.StatusServiceUnavailable {
		t.Fatalf("GET /signin/oidc with the provider down = %d, want 503", status)
	}

	// Password alone is not enough for a break-glass admin.
	mark := r.lastAudit(t)
	status, _, body = b.post("/signin", url.Values{"username": {"root"}, "password": {adminPassword}}, "")
	if status != http.StatusForbidden || !strings.Contains(body, "you have no MFA device") {
		t.Fatalf("break glass without an MFA device: %d:\n%.500s", status, body)
	}
	if evs := r.audits(t, mark); len(evs) != 1 || evs[0].Detail != "break-glass sign-in of an admin without an active MFA device" {
		t.Fatalf("audit: %+v", evs)
	}

	k, _ := r.registered("root", "Root phone")
	mark = r.lastAudit(t)
	b.signIn("root", adminPassword, &k, r.clock)
	found := false
	for _, e := range r.audits(t, mark) {
		found = found || e.Action == "signin.breakglass" && e.Actor == "root"
	}
	if !found {
		t.Fatalf("audit after a break-glass sign-in: %+v, want signin.breakglass", r.audits(t, mark))
	}
	if status, path, _ := b.get("/settings"); status != 200 || path != "/settings" {
		t.Fatalf("GET /settings as the break-glass admin = %d at %s", status, path)
	}
}

// TestSSOLocalSigninFrom: outside local_signin_from the sign-in page
// offers only the provider, and a posted password is refused unchecked.
func TestSSOLocalSigninFrom(t *testing.T) {
	r := newSSORig(t, ssoOptions{allowLocal: true, localFrom: []string{"10.9.0.0/16"}})
	r.admin()
	b := &browser{t: t, base: r.url, c: r.client()}
	status, _, body := b.get("/signin")
	if status != 200 || strings.Contains(body, `action="/signin"`) || !strings.Contains(body, "Sign in with Test IdP") {
		t.Fatalf("sign-in page outside local_signin_from: %d:\n%.800s", status, body)
	}
	mark := r.lastAudit(t)
	status, _, body = b.post("/signin", url.Values{"username": {"root"}, "password": {adminPassword}}, "")
	if status != http.StatusForbidden || !strings.Contains(body, "Local sign-in is not allowed from your address") {
		t.Fatalf("local sign-in outside local_signin_from: %d:\n%.500s", status, body)
	}
	if evs := r.audits(t, mark); len(evs) != 1 || evs[0].Detail != "local sign-in from an address outside oidc.local_signin_from" {
		t.Fatalf("audit: %+v", evs)
	}
}

// TestSSORolesGoAway: the role comes from the groups at each sign-in;
// when the groups no longer give one, the next sign-in reaches only the
// portal and the console refuses it.
func TestSSORolesGoAway(t *testing.T) {
	r := newSSORig(t, ssoOptions{allowLocal: true})
	c := r.client()
	if status, path, _ := visit(t, c, r.begin(t, c, "alice").String()); status != 200 || path != "/users" {
		t.Fatalf("alice as admin: %d at %s, want /users", status, path)
	}
	if err := r.op.SetGroups("alice", []string{"staff"}); err != nil {
		t.Fatal(err)
	}
	c = r.client()
	status, path, _ := visit(t, c, r.begin(t, c, "alice").String())
	if status != 200 || path != "/portal" {
		t.Fatalf("alice without a mapped group: %d at %s, want the portal", status, path)
	}
	for _, p := range []string{"/users", "/settings"} {
		if status, _, _ := visit(t, c, r.url+p); status != http.StatusForbidden {
			t.Errorf("GET %s after the role went = %d, want 403", p, status)
		}
	}
}
