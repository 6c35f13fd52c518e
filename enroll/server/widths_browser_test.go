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
	"github.com/totpbox/totpbox/enroll/seedfile"
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
	"/users/" + longUser + "/mfa-devices": "console-devices",
	"/appliances":                         "console-appliances",
	"/portal":                             "portal",
}

// Names as long as the limits allow, as directories and people give
// them: the pages must fit them on a phone.
var (
	// longUser is a 64-character username, as a directory gives it.
	longUser = "alice.with.a.rather.long.name.from.the.directory.tree@example.uk"
	// longWord is a 64-character friendly name without a space.
	longWord = strings.Repeat("W", 64)
	// longDeviceName is a 64-character friendly name with spaces.
	longDeviceName = "Alice kiosk token at the reception desk of the north building 02"
	// longAppliance is a 64-character appliance name.
	longAppliance = "Lobby kiosk 3 in the north building, by the revolving door, left"
	// longDisplayName is a 128-character display name.
	longDisplayName = strings.Repeat("Alice-Marie Wolfeschlegelsteinhausen ", 4)[:128]
	// longEmail is a 254-character email address.
	longEmail = strings.Repeat("a", 64) + "@" + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 58) + ".uk"
)

// layoutProblems is JavaScript that lists what makes the page hard to use
// at the window's width: boxes that scroll sideways (hiding what is past
// their edge), controls out of sight, and words of up to 20 characters
// broken across lines ("adm in", "device.regi ster"). Longer runs (an
// email address, a 64-character name) may break where they must.
const layoutProblems = `(() => {
	const out = [];
	const main = document.querySelector("main");
	const name = el => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
		(typeof el.className === "string" && el.className.trim() ? "." + el.className.trim().split(/\s+/).join(".") : "");
	for (const el of main.querySelectorAll("*")) {
		const cs = getComputedStyle(el);
		if ((cs.overflowX === "auto" || cs.overflowX === "scroll") && el.scrollWidth > el.clientWidth + 1) {
			out.push(name(el) + " scrolls sideways inside its box (" + el.scrollWidth + " px in " + el.clientWidth + " px)");
		}
	}
	for (const el of main.querySelectorAll("a, button, input, select, summary")) {
		const r = el.getBoundingClientRect();
		if (r.width === 0 && r.height === 0) continue;
		if (r.right > innerWidth + 1 || r.left < -1) {
			out.push(name(el) + " “" + (el.textContent || el.value || "").trim() + "” is out of sight (" + Math.round(r.left) + " to " + Math.round(r.right) + " px)");
		}
	}
	const walk = document.createTreeWalker(main, NodeFilter.SHOW_TEXT);
	for (let n = walk.nextNode(); n; n = walk.nextNode()) {
		const re = /[^\s\-–—\/]+/g;
		for (let m; (m = re.exec(n.data)); ) {
			if (m[0].length > 20) continue;
			const r = document.createRange();
			r.setStart(n, m.index);
			r.setEnd(n, m.index + m[0].length);
			const lines = new Set(Array.from(r.getClientRects()).filter(q => q.width > 0).map(q => Math.round(q.bottom)));
			if (lines.size > 1) out.push("“" + m[0] + "” is broken across lines in " + name(n.parentElement));
		}
	}
	return out;
})()`

// TestBrowserPagesFit visits every page the console and the portal serve,
// at a phone's width and a desktop's, with the longest names the limits
// allow, and checks that each is usable there: no page is wider than the
// window, nothing scrolls sideways inside its own box (rows become cards
// on a phone, their actions in sight), and no short word is broken
// across lines. It also checks every page with axe-core: no serious or
// critical accessibility violation, listed by rule and page. The pages
// come from the console's routes, so a new page without a visit here
// fails the test.
func TestBrowserPagesFit(t *testing.T) {
	b := browsertest.Start(t, 4*time.Minute)
	axe := browsertest.LoadAxe(t)
	ctx := context.Background()
	h := newHarness(t, storeSQLite(t), nil)
	h.admin()
	st := core.DefaultSettings()
	st.SelfService = true
	st.Issuer = strings.Repeat("Example Corporation ", 4)[:64]
	if err := h.srv.Core().SaveSettings(ctx, st); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{longUser, longWord, longDeviceName, longAppliance} {
		if len(n) != 64 {
			t.Fatalf("%q is %d characters, want the limit 64", n, len(n))
		}
	}
	if len(longDisplayName) != 128 || len(longEmail) != 254 {
		t.Fatalf("display name %d, email %d characters, want 128 and 254", len(longDisplayName), len(longEmail))
	}
	// The user has an active device and a pending one, all with the
	// longest names; an appliance is paired and has reported its clock;
	// the audit log has a long row.
	h.mustCall(201, "POST", "/api/v1/users", map[string]any{"username": longUser, "display_name": longDisplayName, "email": longEmail})
	k, active := h.registered(longUser, longWord)
	m := h.mustCall(201, "POST", "/api/v1/users/"+longUser+"/mfa-devices", map[string]any{"name": longDeviceName})
	pending := int64(m["id"].(float64))
	user, err := h.st.UserByName(ctx, longUser)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.srv.Core().SetPassword(ctx, core.Actor{Role: core.RoleAdmin}, user, "user password 1"); err != nil {
		t.Fatal(err)
	}
	// The user's page charts a month of verify activity.
	var days []store.VerifyDay
	for i := range 30 {
		days = append(days, store.VerifyDay{UserID: user.ID, Day: h.clock.Now().AddDate(0, 0, -i), Successes: int64(100 + i), Failures: int64(i % 7), Lockouts: int64(i % 2)})
	}
	if err := h.st.AddVerifyDays(ctx, days); err != nil {
		t.Fatal(err)
	}
	// Hardware tokens with the longest serial, pre-assigned to the user.
	if _, err := h.srv.Core().ImportHardwareTokens(ctx, core.System, []seedfile.Token{
		{Serial: strings.Repeat("S", 64), Manufacturer: longAppliance, Model: longWord, Owner: longUser,
			Key: enroll.Key{Secret: []byte("0123456789abcdefghij"), Algorithm: enroll.SHA1, Digits: 6, Period: 30 * time.Second}},
		{Serial: "HOTP-0001", Kind: seedfile.HOTP, Manufacturer: "Feitian",
			Key: enroll.Key{Secret: []byte("klmnopqrstuvwxyz0123"), Algorithm: enroll.SHA1, Digits: 8, Period: 30 * time.Second}},
	}); err != nil {
		t.Fatal(err)
	}
	hb := h.browser()
	hb.signIn("root", adminPassword, nil, h.clock)
	kiosk := h.newAppliance()
	pairThroughConsole(t, hb, kiosk, longAppliance)
	kiosk.sync(&proto.ClockReport{Time: h.clock.Now().Add(-40 * time.Millisecond), Bound: 8 * time.Millisecond, State: "SYNCED"})
	if err := h.st.Audit(ctx, store.AuditEvent{Time: h.clock.Now(), Actor: "appliance:" + longAppliance, Action: "appliance.pair",
		Target: "appliance:" + kiosk.id, Detail: strings.Repeat("paired from the reception desk after the move ", 4),
		IP: "2001:0db8:85a3:0000:0000:8a2e:0370:7334"}); err != nil {
		t.Fatal(err)
	}

	ts := httptest.NewServer(h.srv.Handler())
	defer ts.Close()

	// Every GET page of the console, as admin (console) or as the user
	// (portal and sign-in).
	var routes patterns
	h.srv.console.Register(&routes)
	fill := strings.NewReplacer("{username}", longUser, "{appliance}", kiosk.id, "{$}", "")
	var adminPages, userPages []string
	for _, p := range routes {
		path, ok := strings.CutPrefix(p, "GET ")
		// Not pages: assets, the QR code image, the audit export, the offer
		// status JSON.
		if !ok || strings.HasPrefix(path, "/static/") || strings.HasSuffix(path, ".png") || strings.HasSuffix(path, ".csv") || strings.HasSuffix(path, "/status") {
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
	violations := map[string]map[string]bool{} // "rule (impact): help" -> "screen path"
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
		problems, err := chromedp.Run(b.Ctx, chromedp.Evaluate[[]string](layoutProblems))
		if err != nil {
			b.Fatal(sc.name+" "+path, err)
		}
		for _, p := range problems {
			t.Errorf("%s %s: %s", sc.name, path, p)
		}
		// axe-core is slow: every page is checked on the phone, and
		// again on the desktop where tables stay tables.
		var vs []browsertest.Violation
		if sc.mobile || b.Eval("tables", `document.querySelector("main table") !== null`) == true {
			vs = axe.Check(b, sc.name+" "+path)
		}
		for _, v := range vs {
			k := v.Rule + " (" + v.Impact + "): " + v.Help
			if violations[k] == nil {
				violations[k] = map[string]bool{}
			}
			violations[k][sc.name+" "+path+" at "+strings.Join(v.Targets, ", ")] = true
		}
		if path == "/audit" {
			checkTimes(t, b, sc.name+" "+path)
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
		signIn(longUser, "user password 1")
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
	rules := make([]string, 0, len(violations))
	for r := range violations {
		rules = append(rules, r)
	}
	sort.Strings(rules)
	for _, r := range rules {
		var pages []string
		for p := range violations[r] {
			pages = append(pages, p)
		}
		sort.Strings(pages)
		t.Errorf("axe-core: %s, on:\n\t%s", r, strings.Join(pages, "\n\t"))
	}
}

// checkTimes checks that the page shows its times in the browser's time
// zone, with the UTC time on hover.
func checkTimes(t *testing.T, b *browsertest.Browser, what string) {
	t.Helper()
	times, err := chromedp.Run(b.Ctx, chromedp.Evaluate[[][3]string](`Array.from(document.querySelectorAll("main time")).map(e => [e.getAttribute("datetime"), e.textContent, e.title])`))
	if err != nil {
		b.Fatal(what, err)
	}
	if len(times) == 0 {
		t.Errorf("%s: no time on the page", what)
	}
	for _, tm := range times {
		at, err := time.Parse(time.RFC3339, tm[0])
		if err != nil {
			t.Errorf("%s: time datetime=%q: %v", what, tm[0], err)
			continue
		}
		local := at.In(browsertest.Zone).Format("2006-01-02 15:04:05 ")
		if !strings.HasPrefix(tm[1], local) || tm[2] != at.UTC().Format(core.TimeLayout) {
			t.Errorf("%s: time %s shows %q, title %q; want %q… in the viewer's zone (%s), UTC on hover", what, tm[0], tm[1], tm[2], local, browsertest.TimeZone)
		}
	}
}
