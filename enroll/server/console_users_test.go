package server

import (
	"context"
	"html"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/totpbox/totpbox/enroll"
	"github.com/totpbox/totpbox/enroll/server/core"
)

// TestConsoleUsersListDevices checks that the Users list shows each
// user's MFA devices and the flags an admin looks for: locked, out of
// sync.
func TestConsoleUsersListDevices(t *testing.T) {
	h := newHarness(t, storeSQLite(t), nil)
	h.admin()
	st := core.DefaultSettings()
	st.LockoutThreshold = 3
	if err := h.srv.Core().SaveSettings(context.Background(), st); err != nil {
		t.Fatal(err)
	}
	// ann's only device is locked by wrong codes.
	k, _ := h.registered("ann", "Phone")
	bad := enroll.Code(k, h.clock.Now().Add(-time.Hour))
	for range 3 {
		h.call("POST", "/api/v1/verify", map[string]any{"username": "ann", "code": bad})
	}
	// bob has an active device and a pending one.
	h.registered("bob", "Phone")
	h.mustCall(201, "POST", "/api/v1/users/bob/mfa-devices", map[string]any{"name": "Kiosk token"})
	// cid registered with a code typed late: out of sync.
	h.mustCall(201, "POST", "/api/v1/users", map[string]any{"username": "cid"})
	m := h.mustCall(201, "POST", "/api/v1/users/cid/mfa-devices", map[string]any{"name": "Phone"})
	ck, err := enroll.ParseURI(m["otpauth_uri"].(string))
	if err != nil {
		t.Fatal(err)
	}
	shown := h.clock.Now().Add(30 * time.Second)
	h.clock.Advance(4 * time.Minute)
	h.mustCall(200, "POST", devPath("cid", int64(m["id"].(float64)))+"/confirm", map[string]any{"codes": []string{enroll.Code(ck, shown)}})
	// dee has none.
	h.mustCall(201, "POST", "/api/v1/users", map[string]any{"username": "dee"})

	b := h.browser()
	b.signIn("root", adminPassword, nil, h.clock)
	_, _, page := b.get("/users")
	tags := regexp.MustCompile(`<[^>]+>`)
	for user, want := range map[string]string{
		"ann": "1 active Locked",
		"bob": "1 active, 1 pending",
		"cid": "1 active Out of sync",
		"dee": "None",
	} {
		i := strings.Index(page, `<a href="/users/`+user+`">`)
		if i < 0 {
			t.Fatalf("no row for %s:\n%s", user, page)
		}
		row := page[i:]
		row = row[:strings.Index(row, "</tr>")]
		cell := regexp.MustCompile(`(?s)<td data-label="MFA devices">(.*?)</td>`).FindStringSubmatch(row)
		if cell == nil {
			t.Errorf("%s's row has no MFA devices cell:\n%s", user, row)
			continue
		}
		if got := strings.Join(strings.Fields(html.UnescapeString(tags.ReplaceAllString(cell[1], " "))), " "); got != want {
			t.Errorf("%s's MFA devices: %q, want %q", user, got, want)
		}
	}
}
