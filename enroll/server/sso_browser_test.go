package server

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/totpbox/totpbox/enroll"
	"github.com/totpbox/totpbox/enroll/server/browsertest"
)

// ssoBrowserSignIn drives chromium from the console's sign-in page
// through the provider's login form back to the users list.
func ssoBrowserSignIn(b *browsertest.Browser, base, account string) {
	b.Run("sign in with the provider as "+account,
		chromedp.Navigate(base+"/signin"),
		chromedp.Click(browsertest.ByText("a", "Sign in with Test IdP")),
		chromedp.WaitVisible(chromedp.CSS(`input[name=login]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=login]`), account),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), "any password"),
		chromedp.Click(chromedp.CSS(`button.login-submit`)),
		chromedp.WaitVisible(browsertest.ByText("h1", "Users")),
	)
}

// status fetches path from the page with method (a POST carries the
// page's CSRF token) and returns the HTTP status, redirects not followed.
func status(b *browsertest.Browser, method, path string) int {
	js := fmt.Sprintf(`(() => {
		const csrf = document.querySelector('input[name=csrf]');
		const body = new URLSearchParams({csrf: csrf ? csrf.value : ""});
		return fetch(%q, {method: %q, body: %q === "POST" ? body : undefined, redirect: "manual"}).then(r => r.status);
	})()`, path, method, method)
	v, err := chromedp.Run(b.Ctx, chromedp.Evaluate[float64](js, chromedp.EvalAwaitPromise))
	if err != nil {
		b.Fatal(method+" "+path, err)
	}
	return int(v)
}

// TestBrowserSSO: chromium signs each role in through a real OpenID
// Provider (admin, helpdesk limited to a site, auditor), tries what the
// role may not do (403), and signs out through the provider's logout.
func TestBrowserSSO(t *testing.T) {
	b := browsertest.Start(t, 120*time.Second)
	r := newSSORig(t, ssoOptions{allowLocal: true})
	for _, tc := range []struct {
		account string
		// refused are "METHOD /path" the role may not use.
		refused []string
	}{
		{"alice", nil},
		{"hank", []string{"GET /settings", "POST /settings", "GET /webhooks", "POST /webhooks", "POST /appliances", "GET /audit", "POST /users"}},
		{"ada", []string{"POST /settings", "POST /users", "POST /webhooks", "POST /appliances", "POST /users/alice/disable"}},
	} {
		ssoBrowserSignIn(b, r.url, tc.account)
		for _, req := range tc.refused {
			method, path, _ := strings.Cut(req, " ")
			if got := status(b, method, path); got != 403 {
				t.Errorf("%s as %s = %d, want 403", req, tc.account, got)
			}
		}
		// Admins reach the settings; the others get a plain refusal.
		got := status(b, "GET", "/settings")
		if tc.account == "alice" && got != 200 {
			t.Errorf("GET /settings as alice = %d, want 200", got)
		}
		// Sign out: the provider's logout page, then back to sign in.
		b.Run("sign out through the provider as "+tc.account,
			chromedp.Click(browsertest.ByText("button", "Sign out")),
			chromedp.WaitVisible(browsertest.ByText("button", "Yes, sign me out")),
			chromedp.Click(browsertest.ByText("button", "Yes, sign me out")),
			chromedp.WaitVisible(browsertest.ByText("a", "Sign in with Test IdP")),
		)
		if got := status(b, "GET", "/users"); got != 303 && got != 0 {
			t.Errorf("GET /users after signing out as %s = %d, want a redirect to sign in", tc.account, got)
		}
	}

	// A user whose groups give no role: the provider, then a code from
	// their MFA device, then the portal.
	k, _ := r.registered("pat", "Pat phone")
	b.Run("portal sign-in through the provider and a code",
		chromedp.Navigate(r.url+"/signin"),
		chromedp.Click(browsertest.ByText("a", "Sign in with Test IdP")),
		chromedp.WaitVisible(chromedp.CSS(`input[name=login]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=login]`), "pat"),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), "any password"),
		chromedp.Click(chromedp.CSS(`button.login-submit`)),
		chromedp.WaitVisible(chromedp.ID("code")),
		chromedp.SendKeys(chromedp.ID("code"), enroll.Code(k, r.clock.Now())),
		chromedp.Click(browsertest.ByText("button", "Sign in")),
		chromedp.WaitVisible(browsertest.ByText("h1", "Your MFA devices")),
	)
	if got := status(b, "GET", "/users"); got != 403 {
		t.Errorf("GET /users as pat (no role) = %d, want 403", got)
	}
}

// BenchmarkBrowserSignIn times, in chromium, the way from the sign-in
// page to the users list: through the OpenID Provider (the button, its
// login form, the code exchange) beside a local password sign-in (an
// argon2id check) on a server without OIDC, in the same run.
//
//	go test ./enroll/server -run '^$' -bench BrowserSignIn -benchtime 20x
func BenchmarkBrowserSignIn(b *testing.B) {
	br := browsertest.Start(b, 10*time.Minute)
	clear := func() {
		if _, err := chromedp.Call(br.Ctx, network.ClearBrowserCookies, cdp.Empty{}); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("oidc", func(b *testing.B) {
		r := newSSORig(b, ssoOptions{allowLocal: true})
		for b.Loop() {
			b.StopTimer()
			clear()
			br.Run("open the sign-in page", chromedp.Navigate(r.url+"/signin"), chromedp.WaitVisible(browsertest.ByText("a", "Sign in with Test IdP")))
			b.StartTimer()
			br.Run("sign in through the provider",
				chromedp.Click(browsertest.ByText("a", "Sign in with Test IdP")),
				chromedp.WaitVisible(chromedp.CSS(`input[name=login]`)),
				chromedp.SendKeys(chromedp.CSS(`input[name=login]`), "alice"),
				chromedp.SendKeys(chromedp.CSS(`input[name=password]`), "any password"),
				chromedp.Click(chromedp.CSS(`button.login-submit`)),
				chromedp.WaitVisible(browsertest.ByText("h1", "Users")),
			)
		}
	})
	b.Run("local", func(b *testing.B) {
		h := newHarness(b, storeSQLite(b), nil)
		h.admin()
		ts := httptest.NewServer(h.srv.Handler())
		defer ts.Close()
		for b.Loop() {
			b.StopTimer()
			clear()
			br.Run("open the sign-in page", chromedp.Navigate(ts.URL+"/signin"), chromedp.WaitVisible(chromedp.ID("username")))
			b.StartTimer()
			br.Run("sign in with a password",
				chromedp.SendKeys(chromedp.ID("username"), "root"),
				chromedp.SendKeys(chromedp.ID("password"), adminPassword),
				chromedp.Click(chromedp.CSS(`form[action="/signin"] button[type=submit]`)),
				chromedp.WaitVisible(browsertest.ByText("h1", "Users")),
			)
		}
	})
}
