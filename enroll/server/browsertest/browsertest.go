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
