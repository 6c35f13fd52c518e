// Package browsertest starts Debian's headless chromium for tests of the
// console, through chromedp. It never downloads a browser: without
// /usr/bin/chromium the test is skipped, or fails when TOTPBOX_REQUIRE_PARTS=1
// (CI sets it, so a missing browser is never a silent skip there).
package browsertest

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/totpbox/totpbox/internal/testkit"
)

// ChromiumPath is where Debian's chromium package installs the browser.
const ChromiumPath = "/usr/bin/chromium"

// TimeZone is the browser's time zone on every machine: pages show times
// in the viewer's zone, and tests need one that is not UTC and has no
// daylight saving time (UTC+5:30).
const TimeZone = "Asia/Kolkata"

// Zone is TimeZone as a Go location.
var Zone = time.FixedZone("IST", 5*3600+30*60)

// Browser is a chromium tab driven by a test: each step is named, and a
// failing step fails the test with the page's address and text.
type Browser struct {
	// Ctx is the chromedp context, for steps the helpers do not cover.
	Ctx context.Context
	t   testing.TB
}

// Start starts headless chromium (see New) and returns its tab.
func Start(t testing.TB, timeout time.Duration) *Browser {
	t.Helper()
	return &Browser{Ctx: New(t, timeout), t: t}
}

// Fatal fails the test at step what with err, the page's URL and text.
func (b *Browser) Fatal(what string, err error) {
	b.t.Helper()
	loc, _ := chromedp.Run(b.Ctx, chromedp.Location())
	body, _ := chromedp.Run(b.Ctx, chromedp.Text(chromedp.CSS("main")))
	b.t.Fatalf("%s: %v (at %s)\n%s", what, err, loc, body)
}

// Run performs the steps of what.
func (b *Browser) Run(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.Ctx, steps...); err != nil {
		b.Fatal(what, err)
	}
}

// Text returns the text of the element sel selects.
func (b *Browser) Text(what string, sel chromedp.CSS) string {
	b.t.Helper()
	v, err := chromedp.Run(b.Ctx, chromedp.Text(sel))
	if err != nil {
		b.Fatal(what, err)
	}
	return v
}

// Eval returns the value of the JavaScript expression js.
func (b *Browser) Eval(what, js string) any {
	b.t.Helper()
	v, err := chromedp.Run(b.Ctx, chromedp.Evaluate[any](js))
	if err != nil {
		b.Fatal(what, err)
	}
	return v
}

// New starts headless chromium with a fresh profile and returns a chromedp
// context that ends after timeout or with the test.
func New(t testing.TB, timeout time.Duration) context.Context {
	t.Helper()
	_, err := os.Stat(ChromiumPath)
	testkit.RequirePart(t, err != nil, ChromiumPath+" (Debian package chromium)")
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(ChromiumPath),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Env("TZ="+TimeZone),
	)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, timeout)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	return ctx
}

// ByText is an XPath selecting tag elements whose text, with white space
// normalised, is text.
func ByText(tag, text string) string {
	return `//` + tag + `[normalize-space()="` + text + `"]`
}

// Violation is one axe-core rule a page breaks, with how many of its
// elements break it.
type Violation struct {
	Rule   string `json:"id"`
	Impact string `json:"impact"`
	Help   string `json:"help"`
	// Targets are CSS selectors of the offending elements.
	Targets []string `json:"targets"`
}

// Axe checks pages for accessibility with axe-core (npm axe-core, from
// the test's node modules).
type Axe struct {
	source string
}

// LoadAxe reads axe.min.js, skipping or failing the test as
// testkit.NodeModules does when axe-core is missing.
func LoadAxe(t testing.TB) *Axe {
	t.Helper()
	dir := testkit.NodeModules(t, "axe-core")
	b, err := os.ReadFile(filepath.Join(dir, "axe-core", "axe.min.js"))
	if err != nil {
		t.Fatal(err)
	}
	return &Axe{source: string(b)}
}

// axeRun runs axe-core on the page (WCAG 2.1 A and AA and best practices)
// and returns its violations with the selectors of their elements.
const axeRun = `axe.run(document, {resultTypes: ["violations"]}).then(r => r.violations.map(v => ({
	id: v.id, impact: v.impact || "", help: v.help,
	targets: v.nodes.map(n => n.target.join(" ")),
})))`

// Check injects axe-core into the page b shows and returns the violations
// of impact serious or critical.
func (a *Axe) Check(b *Browser, what string) []Violation {
	b.t.Helper()
	if _, err := chromedp.Run(b.Ctx, chromedp.Evaluate[any](a.source+";0")); err != nil {
		b.Fatal("inject axe-core: "+what, err)
	}
	all, err := chromedp.Run(b.Ctx, chromedp.Evaluate[[]Violation](axeRun, chromedp.EvalAwaitPromise))
	if err != nil {
		b.Fatal("axe-core: "+what, err)
	}
	var bad []Violation
	for _, v := range all {
		if v.Impact == "serious" || v.Impact == "critical" {
			bad = append(bad, v)
		}
	}
	return bad
}
