package server

import (
	"context"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/totpbox/totpbox/enroll"
	"github.com/totpbox/totpbox/enroll/proto"
	"github.com/totpbox/totpbox/enroll/server/browsertest"
	"github.com/totpbox/totpbox/enroll/server/core"
	"github.com/totpbox/totpbox/enroll/store"
)

var screenshots = flag.Bool("screenshots", false, "write the console's screenshots to docs/img")

// patterns records the routes a handler registers.
type patterns []string

func (p *patterns) HandleFunc(pattern string, _ func(http.ResponseWriter, *http.Request)) {
	*p = append(*p, pattern)
}

// screen is a browser window size the console must fit.
type screen struct {
	name          string
	width, height int64
	mobile        bool
}

var screens = []screen{{"phone", 390, 844, true}, {"desktop", 1280, 800, false}}

// shots are the pages whose pictures the README shows, by path.
var shots = map[string]string{
	"/users/pat/mfa-devices": "console-devices",
	"/appliances":            "console-appliances",
	"/portal":                "portal",
}

// TestBrowserPagesFit visits every page the console and the portal serve,
// at a phone's width and a desktop's, and checks that none is wider than
// the window: the navigation wraps in its bar and tables scroll in their
// own box. The pages come from the console's routes, so a new page
// without a visit here fails the test.
func TestBrowserPagesFit(t *testing.T) {
	b := browsertest.Start(t, 3*time.Minute)
	ctx := context.Background()
	h := newHarness(t, storeSQLite(t), nil)
	h.admin()
	st := core.DefaultSettings()
	st.SelfService = true
	if err := h.srv.Core().SaveSettings(ctx, st); err != nil {
		t.Fatal(err)
	}
	// pat has an active device and a pending one; an appliance is paired
	// and has reported its clock; the audit log has a long row.
	k, active := h.registered("pat", "Pat phone")
	m := h.mustCall(201, "POST", "/api/v1/users/pat/mfa-devices", map[string]any{"name": "Pat kiosk token"})
	pending := int64(m["id"].(float64))
	pat, err := h.st.UserByName(ctx, "pat")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.srv.Core().SetPassword(ctx, core.Actor{}, pat, "pat password 1"); err != nil {
		t.Fatal(err)
	}
	// pat's page charts a month of verify activity.
	var days []store.VerifyDay
	for i := range 30 {
		days = append(days, store.VerifyDay{UserID: pat.ID, Day: h.clock.Now().AddDate(0, 0, -i), Successes: int64(100 + i), Failures: int64(i % 7), Lockouts: int64(i % 2)})
	}
	if err := h.st.AddVerifyDays(ctx, days); err != nil {
		t.Fatal(err)
	}
	hb := h.browser()
	hb.signIn("root", adminPassword, nil, h.clock)
	kiosk := h.newAppliance()
	pairThroughConsole(t, hb, kiosk, "Lobby kiosk 3")
	kiosk.sync(&proto.ClockReport{Time: h.clock.Now().Add(-40 * time.Millisecond), Bound: 8 * time.Millisecond, State: "SYNCED"})
	if err := h.st.Audit(ctx, store.AuditEvent{Time: h.clock.Now(), Actor: "appliance:Lobby kiosk 3 in the north building", Action: "appliance.pair",
		Target: "appliance:" + kiosk.id, Detail: strings.Repeat("paired from the reception desk after the move ", 4),
		IP: "2001:0db8:85a3:0000:0000:8a2e:0370:7334"}); err != nil {
		t.Fatal(err)
	}

	ts := httptest.NewServer(h.srv.Handler())
	defer ts.Close()

	// Every GET page of the console, as admin (console) or as pat (portal
	// and sign-in).
	var routes patterns
	h.srv.console.Register(&routes)
	fill := strings.NewReplacer("{username}", "pat", "{appliance}", kiosk.id, "{$}", "")
	var adminPages, userPages []string
	for _, p := range routes {
		path, ok := strings.CutPrefix(p, "GET ")
		// Not pages: assets, the QR code image, the offer status JSON.
		if !ok || strings.HasPrefix(path, "/static/") || strings.HasSuffix(path, ".png") || strings.HasSuffix(path, "/status") {
			continue
		}
		id := active
		if strings.HasSuffix(path, "/configure") {
			id = pending
		}
		path = strings.ReplaceAll(fill.Replace(path), "{id}", itoa(id))
		switch {
		case strings.HasPrefix(path, "/portal"), path == "/":
			userPages = append(userPages, path)
		case strings.HasPrefix(path, "/signin"):
			// Visited while signing in.
		default:
			adminPages = append(adminPages, path)
		}
	}
	// The error page, too.
	adminPages = append(adminPages, "/users/nobody")
	sort.Strings(adminPages)
	sort.Strings(userPages)
	if len(adminPages) < 12 || len(userPages) < 6 {
		t.Fatalf("routes give too few pages: %v %v", adminPages, userPages)
	}

	visited := 0
	check := func(sc screen, path string) {
		t.Helper()
		size, err := chromedp.Run(b.Ctx, chromedp.Evaluate[[2]float64](`[document.scrollingElement.scrollWidth, innerWidth]`))
		if err != nil {
			b.Fatal(sc.name+" "+path, err)
		}
		// A phone zooms out to show a page wider than the screen, which
		// widens innerWidth with it: compare with the screen's width too.
		if width, inner := size[0], size[1]; width > inner || inner != float64(sc.width) {
			t.Errorf("%s %s: the page is %v px wide in a %v px window (screen %d px)", sc.name, path, width, inner, sc.width)
		}
		visited++
		if name, ok := shots[path]; ok && *screenshots {
			png, err := chromedp.Run(b.Ctx, chromedp.FullScreenshot(100))
			if err != nil {
				b.Fatal("screenshot "+path, err)
			}
			if err := os.WriteFile(filepath.Join("..", "..", "docs", "img", name+"-"+sc.name+".png"), png, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	visit := func(sc screen, path string) {
		t.Helper()
		b.Run("open "+path, chromedp.Navigate(ts.URL+path), chromedp.WaitReady(chromedp.CSS("main")))
		check(sc, path)
	}
	signIn := func(user, password string) {
		t.Helper()
		b.Run("sign in as "+user,
			chromedp.Navigate(ts.URL+"/signin"),
			chromedp.WaitVisible(chromedp.ID("username")),
			chromedp.SendKeys(chromedp.ID("username"), user),
			chromedp.SendKeys(chromedp.ID("password"), password),
			chromedp.Click(chromedp.CSS(`form[action="/signin"] button[type=submit]`)),
		)
	}
	signOut := func() {
		t.Helper()
		b.Run("sign out", chromedp.Click(browsertest.ByText("button", "Sign out")), chromedp.WaitVisible(chromedp.ID("username")))
	}

	for _, sc := range screens {
		opts := []chromedp.EmulateViewportOption{chromedp.EmulateScale(1)}
		if sc.mobile {
			opts = append(opts, chromedp.EmulateMobile, chromedp.EmulateTouch, chromedp.EmulatePortrait)
		}
		b.Run("window "+sc.name, chromedp.EmulateViewport(sc.width, sc.height, opts...))

		visit(sc, "/signin")
		signIn("root", adminPassword)
		b.Run("signed in", chromedp.WaitVisible(browsertest.ByText("h1", "Users")))
		for _, p := range adminPages {
			visit(sc, p)
		}
		signOut()

		h.clock.Advance(30 * time.Second)
		signIn("pat", "pat password 1")
		b.Run("code step", chromedp.WaitVisible(chromedp.ID("code")))
		check(sc, "/signin/code")
		b.Run("type code",
			chromedp.SendKeys(chromedp.ID("code"), enroll.Code(k, h.clock.Now())),
			chromedp.Click(browsertest.ByText("button", "Sign in")),
			chromedp.WaitVisible(browsertest.ByText("h1", "Your MFA devices")),
		)
		for _, p := range userPages {
			visit(sc, p)
		}
		signOut()
	}
	if want := len(screens) * (2 + len(adminPages) + len(userPages)); visited != want {
		t.Fatalf("checked %d pages, want %d", visited, want)
	}
}
