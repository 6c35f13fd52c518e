package server

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/totpbox/totpbox/enroll"
	"github.com/totpbox/totpbox/enroll/server/core"
	"github.com/totpbox/totpbox/enroll/store"
	"github.com/totpbox/totpbox/enroll/store/storetest"
)

// TestPortalUnlock: a device locked until unlocked by lockout escalation
// is unlocked by its user in the portal, signed in with their password
// and a code of another device, whether or not users may manage their
// own MFA devices; a wrong password, a password alone (the locked
// device's code does not finish sign-in), a missing CSRF token and
// another user are refused and leave it locked (issue 12, item 4).
func TestPortalUnlock(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) store.Store) {
		for _, self := range []bool{false, true} {
			t.Run(fmt.Sprintf("self_service=%v", self), func(t *testing.T) {
				h := newHarness(t, open(t), func(c *Config) { c.Limits.VerifyPerUser = Rate{PerSecond: -1} })
				h.settings(func(st *core.Settings) { st.LockoutThreshold, st.LockoutMax, st.SelfService = 3, 1, self })
				ctx := context.Background()
				for _, name := range []string{"ivy", "jack"} {
					if _, err := h.srv.Core().CreateUser(ctx, core.System, core.NewUser{Username: name, Password: name + " password"}); err != nil {
						t.Fatal(err)
					}
				}
				lockedKey, lockedID := h.registered("ivy", "Ivy phone")
				for range 3 {
					h.verify("ivy", enroll.CodeAt(lockedKey, enroll.Step(lockedKey, h.clock.Now())+100))
				}
				stillLocked := func(when string) {
					t.Helper()
					if d := h.device("ivy", lockedID); d["locked_until_unlocked"] != true {
						t.Fatalf("%s: %v, want locked until unlocked", when, d)
					}
				}
				stillLocked("after 3 wrong codes with lockout_max 1")
				spareKey, _ := h.registered("ivy", "Ivy token")
				jackKey, _ := h.registered("jack", "Jack token")
				unlock := "/portal/mfa-devices/" + itoa(lockedID) + "/unlock"

				// A wrong password gives no session to unlock with.
				b := h.browser()
				if status, _, _ := b.post("/signin", url.Values{"username": {"ivy"}, "password": {"wrong password"}}, ""); status != http.StatusUnauthorized {
					t.Fatalf("sign-in with a wrong password = %d, want 401", status)
				}
				if status, _, _ := b.post(unlock, nil, ""); status != http.StatusUnauthorized {
					t.Errorf("unlock after a wrong password = %d, want 401", status)
				}
				stillLocked("after a wrong password")

				// The password alone is not enough, and the locked device's
				// own code does not finish sign-in.
				_, path, page := b.post("/signin", url.Values{"username": {"ivy"}, "password": {"ivy password"}}, "")
				if path != "/signin/code" {
					t.Fatalf("after the password: at %s", path)
				}
				token := csrf(t, page)
				if status, _, _ := b.post(unlock, nil, token); status != http.StatusUnauthorized {
					t.Errorf("unlock with the password alone = %d, want 401", status)
				}
				status, _, page := b.post("/signin/code", url.Values{"code": {enroll.Code(lockedKey, h.clock.Now())}}, token)
				if status != http.StatusUnauthorized {
					t.Fatalf("sign-in with the locked device's code = %d, want 401:\n%s", status, page)
				}
				stillLocked("after the password alone")

				// Password and a code of another device: the portal shows
				// the lock; the unlock needs the CSRF token.
				status, path, page = b.post("/signin/code", url.Values{"code": {enroll.Code(spareKey, h.clock.Now())}}, csrf(t, page))
				if status != 200 || path != "/portal" {
					t.Fatalf("sign-in with another device's code: at %s (%d)\n%s", path, status, page)
				}
				if !strings.Contains(page, "Locked until unlocked") || !strings.Contains(page, `action="`+unlock+`"`) {
					t.Fatalf("portal does not show the lock with Unlock:\n%s", page)
				}
				token = csrf(t, page)
				if status, _, _ := b.post(unlock, nil, ""); status != http.StatusForbidden {
					t.Errorf("unlock without the CSRF token = %d, want 403", status)
				}
				if status, _, _ := b.post(unlock, nil, "x"+token); status != http.StatusForbidden {
					t.Errorf("unlock with a wrong CSRF token = %d, want 403", status)
				}
				stillLocked("after unlocks without the CSRF token")

				// Another user, fully signed in, cannot unlock it.
				jb := h.browser()
				jpage := jb.signIn("jack", "jack password", &jackKey, h.clock)
				if status, _, _ := jb.post(unlock, nil, csrf(t, jpage)); status != http.StatusNotFound {
					t.Errorf("jack unlocking ivy's device = %d, want 404", status)
				}
				stillLocked("after another user's unlock")

				status, path, page = b.post(unlock, nil, token)
				if status != 200 || path != "/portal" || !strings.Contains(page, "MFA device &#34;Ivy phone&#34; unlocked.") {
					t.Fatalf("unlock: at %s (%d)\n%s", path, status, page)
				}
				if d := h.device("ivy", lockedID); d["locked_until_unlocked"] != false || d["lockouts"].(float64) != 0 || d["fail_count"].(float64) != 0 {
					t.Fatalf("after the portal unlock: %v", d)
				}
				if status, reason := h.verify("ivy", enroll.Code(lockedKey, h.clock.Now())); status != 200 {
					t.Fatalf("verify with the unlocked device = %d %q, want 200", status, reason)
				}
				evs, err := h.st.AuditEvents(ctx, 0, 0)
				if err != nil {
					t.Fatal(err)
				}
				unlocks := 0
				for _, e := range evs {
					if e.Action == "device.unlock" {
						unlocks++
						if !strings.Contains(e.Actor, "ivy") {
							t.Errorf("unlock audited as %q, want by ivy", e.Actor)
						}
					}
				}
				if unlocks != 1 {
					t.Errorf("%d device.unlock events, want 1", unlocks)
				}
			})
		}
	})
}
