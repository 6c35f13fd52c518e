// Package browsertest starts Debian's headless chromium for tests of the
// console, through chromedp. It never downloads a browser: without
// /usr/bin/chromium the test is skipped, or fails when TOTPBOX_REQUIRE_PARTS=1
// (CI sets it, so a missing browser is never a silent skip there).
package browsertest

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// ChromiumPath is where Debian's chromium package installs the browser.
const ChromiumPath = "/usr/bin/chromium"

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
	if _, err := os.Stat(ChromiumPath); err != nil {
		if os.Getenv("TOTPBOX_REQUIRE_PARTS") == "1" {
			t.Fatalf("%s is missing and TOTPBOX_REQUIRE_PARTS=1: install the chromium package", ChromiumPath)
		}
		t.Skipf("%s is missing: install the chromium package to run the browser test", ChromiumPath)
	}
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
