package server

import (
	"html"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// fieldErrorRE finds an error shown under a field: the input's id, the
// id of the message it is described by, and the message.
var fieldErrorRE = regexp.MustCompile(`<input id="([a-z0-9_]+)"[^>]* aria-invalid="true" aria-describedby="([a-z0-9_]+-error)">\s*<p class="error field-error" id="([a-z0-9_]+-error)" role="alert">([^<]*)</p>`)

// fieldError returns the field an error is shown under on page and its
// message, failing the test unless exactly one is, announced and linked
// to its input, and no error banner tops the page.
func fieldError(t *testing.T, what, page string) (field, msg string) {
	t.Helper()
	m := fieldErrorRE.FindAllStringSubmatch(page, -1)
	if len(m) != 1 || m[0][2] != m[0][3] || m[0][2] != m[0][1]+"-error" {
		t.Fatalf("%s: want one error under its field, linked with aria-describedby, got %q:\n%s", what, m, page)
	}
	if strings.Contains(page, `<p class="error" role="alert">`) {
		t.Errorf("%s: the error is also a banner at the top", what)
	}
	return m[0][1], html.UnescapeString(m[0][4])
}

// TestConsoleFormErrorsAtTheirField checks that a form's error is shown
// under the field it concerns, in the page's words, and announced; and
// that a friendly name may hold an apostrophe.
func TestConsoleFormErrorsAtTheirField(t *testing.T) {
	h := newHarness(t, storeSQLite(t), nil)
	h.admin()
	b := h.browser()
	page := b.signIn("root", adminPassword, nil, h.clock)

	_, _, page = b.get("/users/new")
	status, _, page := b.post("/users", url.Values{"username": {"lena"}, "email": {"lena at example"}}, csrf(t, page))
	if field, msg := fieldError(t, "create user", page); status != 400 || field != "email" || !strings.Contains(msg, "is not a valid address") {
		t.Errorf("create user with a bad email = %d, error at %q: %q", status, field, msg)
	}
	status, _, page = b.post("/users", url.Values{"username": {"-lena"}}, csrf(t, page))
	if field, msg := fieldError(t, "create user", page); status != 400 || field != "username" || !strings.Contains(msg, "Username must start with a letter or digit") {
		t.Errorf("create user with a bad username = %d, error at %q: %q", status, field, msg)
	}
	b.post("/users", url.Values{"username": {"lena"}}, csrf(t, page))

	_, _, page = b.get("/settings")
	form := url.Values{"issuer": {"Example"}, "registration_codes": {"1"}, "max_devices": {"8"}, "verify_window": {"11"},
		"lockout_threshold": {"10"}, "lockout_clear_minutes": {"15"}, "lockout_max": {"3"}}
	status, _, page = b.post("/settings", form, csrf(t, page))
	if field, msg := fieldError(t, "settings", page); status != 400 || field != "verify_window" || msg != "Codes accepted either side of the current one must be 0 to 10, not 11." {
		t.Errorf("settings with a window of 11 = %d, error at %q: %q", status, field, msg)
	}

	_, _, page = b.get("/users/lena/mfa-devices/new")
	status, _, page = b.post("/users/lena/mfa-devices", url.Values{"name": {"Lena/phone"}}, csrf(t, page))
	field, msg := fieldError(t, "bad friendly name", page)
	if want := "Friendly name may hold only letters, digits, spaces and + = , . @ - _ ', not “/”."; status != 400 || field != "name" || msg != want {
		t.Errorf("bad friendly name = %d, error at %q: %q, want at name: %q", status, field, msg, want)
	}
	status, path, page := b.post("/users/lena/mfa-devices", url.Values{"name": {"Lena's iPhone"}}, csrf(t, page))
	if status != 200 || !strings.HasSuffix(path, "/configure") || !strings.Contains(html.UnescapeString(page), "Device configuration: Lena's iPhone") {
		t.Fatalf("friendly name with an apostrophe: %d at %s:\n%s", status, path, page)
	}
	confirm := configureRE.FindStringSubmatch(page)[1]
	status, _, page = b.post(confirm, url.Values{"code1": {"000000"}}, csrf(t, page))
	if field, msg := fieldError(t, "wrong code", page); status != 400 || field != "code1" || !strings.Contains(msg, "does not match") {
		t.Errorf("wrong code = %d, error at %q: %q", status, field, msg)
	}
	status, _, page = b.post(confirm, url.Values{"code1": {"12ab56"}}, csrf(t, page))
	if field, msg := fieldError(t, "letters in the code", page); status != 400 || field != "code1" || msg != "Code must hold only digits." {
		t.Errorf("letters in the code = %d, error at %q: %q", status, field, msg)
	}
}
