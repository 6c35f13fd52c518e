package server

import (
	"context"
	"fmt"
	"html"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/totpbox/totpbox/enroll"
	"github.com/totpbox/totpbox/enroll/server/core"
	"github.com/totpbox/totpbox/enroll/store"
	"github.com/totpbox/totpbox/enroll/store/storetest"
	"github.com/totpbox/totpbox/internal/testkit"
)

// verify calls the verify API and returns the status and the reason.
func (h *harness) verify(username, code string) (int, string) {
	h.t.Helper()
	status, v := h.call("POST", "/api/v1/verify", map[string]any{"username": username, "code": code})
	reason, _ := v["reason"].(string)
	return status, reason
}

// device returns the API's object of device id of username.
func (h *harness) device(username string, id int64) map[string]any {
	h.t.Helper()
	list := h.mustCall(200, "GET", "/api/v1/users/"+username+"/mfa-devices", nil)
	for _, d := range list["mfa_devices"].([]any) {
		if m := d.(map[string]any); int64(m["id"].(float64)) == id {
			return m
		}
	}
	h.t.Fatalf("no device %d of %s", id, username)
	return nil
}

func (h *harness) settings(mod func(*core.Settings)) {
	h.t.Helper()
	st := core.DefaultSettings()
	mod(&st)
	if err := h.srv.Core().SaveSettings(context.Background(), st); err != nil {
		h.t.Fatal(err)
	}
}

// TestLateRegistrationCode: a code typed up to 10 steps late registers
// the device out of sync, with no drift learned; verify works at once;
// a resync clears the mark; an older code is refused (issue 11, item 3).
func TestLateRegistrationCode(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) store.Store) {
		h := newHarness(t, open(t), nil)
		h.mustCall(201, "POST", "/api/v1/users", map[string]any{"username": "carol"})
		pending := func(name string) (enroll.Key, int64) {
			m := h.mustCall(201, "POST", "/api/v1/users/carol/mfa-devices", map[string]any{"name": name})
			k, err := enroll.ParseURI(m["otpauth_uri"].(string))
			if err != nil {
				t.Fatal(err)
			}
			return k, int64(m["id"].(float64))
		}

		// Too late: 11 steps behind the window's edge.
		k, id := pending("Old code")
		typed := enroll.Code(k, h.clock.Now())
		h.clock.Advance(12 * 30 * time.Second)
		status, e := h.call("POST", devPath("carol", id)+"/confirm", map[string]any{"codes": []string{typed}})
		if want := "this code is 6 minutes old, too old to register the MFA device"; status != 400 || !strings.HasPrefix(e["error"].(string), want) {
			t.Fatalf("confirm with a code 12 steps old = %d %v, want 400 %q", status, e, want)
		}
		// A wrong code (of no step in the last hour) is wrong, not old.
		wrong := 0
		for now := enroll.Step(k, h.clock.Now()); ; wrong++ {
			taken := false
			for s := now - 130; s <= now+2; s++ {
				taken = taken || enroll.CodeAt(k, s) == fmt.Sprintf("%06d", wrong)
			}
			if !taken {
				break
			}
		}
		status, e = h.call("POST", devPath("carol", id)+"/confirm", map[string]any{"codes": []string{fmt.Sprintf("%06d", wrong)}})
		if want := "the code does not match; type the code the app shows now"; status != 400 || e["error"] != want {
			t.Fatalf("confirm with a wrong code = %d %v, want 400 %q", status, e, want)
		}

		k, id = pending("Phone")
		typed = enroll.Code(k, h.clock.Now())
		h.clock.Advance(4*time.Minute + 30*time.Second) // 9 steps late
		d := h.mustCall(200, "POST", devPath("carol", id)+"/confirm", map[string]any{"codes": []string{typed}})
		if d["status"] != "active" || d["out_of_sync"] != true || d["drift_seconds"].(float64) != 0 {
			t.Fatalf("device registered with a late code = %v, want active, out of sync, drift 0", d)
		}
		if status, reason := h.verify("carol", typed); status != 401 {
			t.Fatalf("verify of the late registration code = %d %q, want 401", status, reason)
		}
		h.clock.Advance(30 * time.Second)
		if status, reason := h.verify("carol", enroll.Code(k, h.clock.Now())); status != 200 {
			t.Fatalf("verify after a late registration = %d %q, want 200", status, reason)
		}

		// The console says so beside the device and offers Resync.
		h.admin()
		b := h.browser()
		b.signIn("root", adminPassword, nil, h.clock)
		_, _, page := b.get("/users/carol/mfa-devices")
		row := page[strings.Index(page, ">Phone<"):]
		row = row[:strings.Index(row, "</tr>")]
		if !strings.Contains(row, "Out of sync") || !strings.Contains(row, "/mfa-devices/"+itoa(id)+"/resync") {
			t.Fatalf("console row of a late-registered device does not say out of sync with Resync:\n%s", row)
		}

		h.clock.Advance(60 * time.Second) // two codes after the one verified
		s := enroll.Step(k, h.clock.Now())
		d = h.mustCall(200, "POST", devPath("carol", id)+"/resync", map[string]any{"codes": []string{enroll.CodeAt(k, s-1), enroll.CodeAt(k, s)}})
		if d["out_of_sync"] != false || d["drift_seconds"].(float64) != 0 {
			t.Fatalf("after resync = %v, want in sync, drift 0", d)
		}
		_, _, page = b.get("/users/carol/mfa-devices")
		if strings.Contains(page, "Out of sync") || !strings.Contains(html.UnescapeString(page), `<span title="Learned drift +0 s (+0 steps of 30 s)">In sync</span>`) {
			t.Fatalf("console still says out of sync after a resync:\n%s", page)
		}
	})
}

// TestDriftDoesNotWalk: one code at the window's edge moves nothing; the
// drift moves one step after DriftVotes codes in a row on one side, never
// more; a correctly set clock keeps working whatever drift was learned
// (issue 11, item 4).
func TestDriftDoesNotWalk(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) store.Store) {
		h := newHarness(t, open(t), nil)
		k, id := h.registered("dave", "Phone")
		at := func(steps int64) string { return enroll.CodeAt(k, enroll.Step(k, h.clock.Now())+steps) }
		next := func() { h.clock.Advance(30 * time.Second) }

		// The walk the issue found: +1, then +2, then +3 steps.
		if status, _ := h.verify("dave", at(1)); status != 200 {
			t.Fatalf("code one step ahead = %d, want 200", status)
		}
		next()
		if status, reason := h.verify("dave", at(2)); status != 401 || reason != core.ReasonInvalid {
			t.Fatalf("code two steps ahead after one edge code = %d %q, want 401 invalid", status, reason)
		}
		if d := h.device("dave", id); d["drift_seconds"].(float64) != 0 {
			t.Fatalf("drift after one edge code = %v s, want 0", d["drift_seconds"])
		}
		next()
		if status, _ := h.verify("dave", at(0)); status != 200 {
			t.Fatalf("correctly clocked code = %d, want 200", status)
		}
		// A clock that runs one step fast, seen DriftVotes times in a row,
		// moves the drift by one step, and no more.
		for i := range core.DriftVotes {
			next()
			if status, _ := h.verify("dave", at(1)); status != 200 {
				t.Fatalf("code one step ahead #%d = %d, want 200", i+1, status)
			}
		}
		if d := h.device("dave", id); d["drift_seconds"].(float64) != 30 {
			t.Fatalf("drift after %d codes one step ahead = %v s, want 30", core.DriftVotes, d["drift_seconds"])
		}
		// The phone's clock is set right again (its first code is of the
		// step it last used, so wait one): still accepted.
		next()
		next()
		if status, _ := h.verify("dave", at(0)); status != 200 {
			t.Fatalf("correctly clocked code after drift +30 s = %d, want 200", status)
		}
		if d := h.device("dave", id); d["drift_seconds"].(float64) != 30 {
			t.Fatalf("one code at zero moved the drift to %v s", d["drift_seconds"])
		}
	})
}

// TestResyncToWrongClockIsUndone: a resync with codes from a clock 8 h
// fast neither locks the right clock out nor blocks a resync back, and
// its codes stay used; resync's errors say which case (issue 11, item 5).
func TestResyncToWrongClockIsUndone(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) store.Store) {
		h := newHarness(t, open(t), nil)
		k, id := h.registered("erin", "Token")
		fast := enroll.Step(k, h.clock.Now().Add(8*time.Hour))
		wrong := []string{enroll.CodeAt(k, fast-1), enroll.CodeAt(k, fast)}
		d := h.mustCall(200, "POST", devPath("erin", id)+"/resync", map[string]any{"codes": wrong})
		if d["drift_seconds"].(float64) != 8*3600 {
			t.Fatalf("drift after resync 8 h fast = %v", d["drift_seconds"])
		}
		dev, err := h.st.Device(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if max := enroll.Step(k, h.clock.Now()) + 1; dev.LastUsedStep > max {
			t.Fatalf("last used step %d runs ahead of now + window %d", dev.LastUsedStep, max)
		}
		// The right clock still verifies, and the resync's codes stay used.
		h.clock.Advance(30 * time.Second)
		if status, reason := h.verify("erin", enroll.Code(k, h.clock.Now())); status != 200 {
			t.Fatalf("right clock after a wrong resync = %d %q, want 200", status, reason)
		}
		if status, reason := h.verify("erin", wrong[1]); status != 401 || reason != core.ReasonReplay {
			t.Fatalf("resync code at verify = %d %q, want 401 replay", status, reason)
		}
		status, e := h.call("POST", devPath("erin", id)+"/resync", map[string]any{"codes": wrong})
		if status != 409 || !strings.Contains(e["error"].(string), "those codes were already used") {
			t.Fatalf("resync with used codes = %d %v, want 409 those codes were already used", status, e)
		}
		// A resync with the right clock undoes it (two codes after the
		// one just used).
		h.clock.Advance(60 * time.Second)
		s := enroll.Step(k, h.clock.Now())
		d = h.mustCall(200, "POST", devPath("erin", id)+"/resync", map[string]any{"codes": []string{enroll.CodeAt(k, s-1), enroll.CodeAt(k, s)}})
		if d["drift_seconds"].(float64) != 0 {
			t.Fatalf("drift after the resync back = %v", d["drift_seconds"])
		}
		h.clock.Advance(30 * time.Second)
		if status, reason := h.verify("erin", enroll.Code(k, h.clock.Now())); status != 200 {
			t.Fatalf("verify after the resync back = %d %q", status, reason)
		}
		status, e = h.call("POST", devPath("erin", id)+"/resync", map[string]any{"codes": []string{"123456", "654321"}})
		if status != 400 || e["error"] != "these are not two codes in a row from this MFA device, as its clock could show them (up to 500 minutes either side of the server's time); type a code, wait for the next one, type it too and submit at once" {
			t.Fatalf("resync with codes of no step = %d %v", status, e)
		}
	})
}

// TestLockedAnswersLocked: a device locked meanwhile (by another server)
// answers a right code, a used one and a wrong one alike: locked, and no
// replay is audited (issue 11, item 11).
func TestLockedAnswersLocked(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) store.Store) {
		st := open(t)
		h := newHarness(t, st, nil)
		k, id := h.registered("frank", "Token")
		used := enroll.Code(k, h.clock.Now())
		if status, _ := h.verify("frank", used); status != 200 { // the cache now holds frank
			t.Fatalf("first verify = %d", status)
		}
		// Another server locks the device.
		for range 10 {
			if _, err := st.RecordFailure(context.Background(), id, store.Lockout{Threshold: 10, Base: time.Hour}, h.clock.Now()); err != nil {
				t.Fatal(err)
			}
		}
		h.clock.Advance(30 * time.Second)
		for name, code := range map[string]string{"right": enroll.Code(k, h.clock.Now()), "used": used, "wrong": enroll.CodeAt(k, enroll.Step(k, h.clock.Now())+50)} {
			if status, reason := h.verify("frank", code); status != 401 || !strings.HasPrefix(reason, core.ReasonLocked) {
				t.Errorf("%s code on a device locked meanwhile = %d %q, want 401 locked", name, status, reason)
			}
		}
		evs, err := st.AuditEvents(context.Background(), 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			if e.Action == "verify.replay" {
				t.Errorf("a code refused because the device is locked was audited as a replay: %+v", e)
			}
		}
	})
}

// TestLockoutEscalates: each lockout in a row doubles the lock; the third
// lasts until unlocked, which the console and the API show; an admin
// unlock, or the user's in the portal, clears it (issue 12, item 4).
func TestLockoutEscalates(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) store.Store) {
		h := newHarness(t, open(t), func(c *Config) { c.Limits.VerifyPerUser = Rate{PerSecond: -1} })
		h.settings(func(st *core.Settings) { st.LockoutThreshold, st.LockoutClear, st.LockoutMax = 3, 5*time.Minute, 3 })
		k, id := h.registered("gina", "Token")
		wrong := func() { h.verify("gina", enroll.CodeAt(k, enroll.Step(k, h.clock.Now())+100)) }
		for n, lock := range []time.Duration{5 * time.Minute, 10 * time.Minute} {
			for range 3 {
				wrong()
			}
			d := h.device("gina", id)
			want := h.clock.Now().Add(lock).UTC().Format(time.RFC3339)
			if d["locked_until"] != want || d["lockouts"].(float64) != float64(n+1) {
				t.Fatalf("lockout %d: %v, want locked until %s", n+1, d, want)
			}
			h.clock.Advance(lock)
		}
		for range 3 {
			wrong()
		}
		d := h.device("gina", id)
		if d["locked_until_unlocked"] != true || d["locked_until"] != nil {
			t.Fatalf("third lockout: %v, want locked until unlocked", d)
		}
		h.clock.Advance(365 * 24 * time.Hour)
		h.srv.Sweep(context.Background())
		if status, reason := h.verify("gina", enroll.Code(k, h.clock.Now())); status != 401 || !strings.Contains(reason, "ask an admin") {
			t.Fatalf("right code a year later = %d %q, want locked until an admin unlocks", status, reason)
		}

		h.admin()
		b := h.browser()
		b.signIn("root", adminPassword, nil, h.clock)
		_, _, page := b.get("/users/gina/mfa-devices")
		if !strings.Contains(page, "Locked until unlocked") {
			t.Fatalf("console does not show the lock until unlocked:\n%s", page)
		}
		if status, _, _ := b.post("/users/gina/mfa-devices/"+itoa(id)+"/unlock", url.Values{}, csrf(t, page)); status != 200 {
			t.Fatalf("unlock = %d", status)
		}
		if d := h.device("gina", id); d["locked_until_unlocked"] != false || d["lockouts"].(float64) != 0 {
			t.Fatalf("after unlock: %v", d)
		}
		h.clock.Advance(30 * time.Second)
		if status, _ := h.verify("gina", enroll.Code(k, h.clock.Now())); status != 200 {
			t.Fatalf("verify after unlock = %d", status)
		}
	})
}

// TestStateTakesEffectAtOnce: two servers on one database, each with its
// cache; a user disabled on one cannot verify on the other at once
// (issue 12, item 6).
func TestStateTakesEffectAtOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) store.Store) {
		st := open(t)
		a := newHarness(t, st, func(c *Config) { c.CacheTTL = time.Hour })
		b := *a // the same token and clock, another server
		srv, err := New(Config{Store: st, Sealer: a.srv.cfg.Sealer, Clock: a.clock, Logger: testkit.Quiet(), CacheTTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		b.srv = srv
		k, _ := a.registered("hana", "Token")
		if status, _ := b.verify("hana", enroll.Code(k, a.clock.Now())); status != 200 { // b caches hana
			t.Fatalf("verify on b = %d", status)
		}
		u, err := st.UserByName(context.Background(), "hana")
		if err != nil {
			t.Fatal(err)
		}
		if err := a.srv.Core().SetDisabled(context.Background(), core.System, u, true); err != nil {
			t.Fatal(err)
		}
		a.clock.Advance(30 * time.Second)
		if status, reason := b.verify("hana", enroll.Code(k, a.clock.Now())); status != 401 || reason != core.ReasonDisabled {
			t.Fatalf("verify on b right after a disabled the user = %d %q, want 401 %q", status, reason, core.ReasonDisabled)
		}
	})
}

// TestAttackerYearAgainstDailyUser: the real user signs in once a day; an
// attacker guesses every day until the device locks, and waits for the
// next day. Over a year the attacker gets no more guesses than docs/API.md
// bounds (the lockout levels once, then one a day as failures leak away:
// threshold × lockout_max + 365), whatever the user's successes, and the
// user is never refused (issue 12, item 4). Before failures leaked, each
// accepted code cleared the count: 10 guesses a day, 3 650 a year.
func TestAttackerYearAgainstDailyUser(t *testing.T) {
	h := newHarness(t, storetest.OpenSQLite(t), func(c *Config) { c.Limits.VerifyPerUser = Rate{PerSecond: -1} })
	k, _ := h.registered("ivan", "Token")
	st := core.DefaultSettings()
	const days = 365
	// wrong is a code of no step in the verify window around now.
	wrong := func() string {
		step := enroll.Step(k, h.clock.Now())
		for c := 0; ; c++ {
			code := fmt.Sprintf("%06d", c)
			match := false
			for s := step - 20; s <= step+20; s++ {
				match = match || enroll.CodeAt(k, s) == code
			}
			if !match {
				return code
			}
		}
	}
	guesses := 0
	for day := range days {
		for range st.LockoutThreshold + 1 {
			status, reason := h.verify("ivan", wrong())
			if status != 401 {
				t.Fatalf("day %d: a wrong code answered %d", day, status)
			}
			if strings.HasPrefix(reason, core.ReasonLocked) {
				break
			}
			guesses++
		}
		h.clock.Advance(12 * time.Hour) // the lock, if any, runs out
		if status, reason := h.verify("ivan", enroll.Code(k, h.clock.Now())); status != 200 {
			t.Fatalf("day %d: the real user's code = %d %q", day, status, reason)
		}
		h.clock.Advance(12 * time.Hour)
	}
	bound := st.LockoutThreshold*st.LockoutMax + days*int(24*time.Hour/core.FailureLeak)
	t.Logf("%d guesses in %d days, bound %d", guesses, days, bound)
	if guesses > bound {
		t.Errorf("the attacker made %d guesses in %d days against a user signing in daily, want at most %d", guesses, days, bound)
	}
}
