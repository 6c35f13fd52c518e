package server

import (
	"github.com/totpbox/totpbox/enroll/store/storetest"

	"github.com/totpbox/totpbox/enroll/server/api"

	"github.com/totpbox/totpbox/enroll/server/core"

	"context"
	"encoding/json"
	"html"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/totpbox/totpbox/enroll"
	"github.com/totpbox/totpbox/enroll/store"
)

func TestAPIRegistrationAndVerify(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) store.Store) {
		h := newHarness(t, open(t), nil)
		u := h.mustCall(201, "POST", "/api/v1/users", map[string]any{"username": "alice", "display_name": "Alice A."})
		if u["username"] != "alice" || u["display_name"] != "Alice A." {
			t.Fatalf("created user = %v", u)
		}
		h.mustCall(200, "GET", "/api/v1/users/alice", nil)

		m := h.mustCall(201, "POST", "/api/v1/users/alice/mfa-devices", map[string]any{"name": "Phone"})
		secret, _ := m["secret"].(string)
		k, err := enroll.ParseURI(m["otpauth_uri"].(string))
		if err != nil {
			t.Fatalf("otpauth_uri: %v", err)
		}
		if k.SecretBase32() != secret || k.Issuer != "totpbox" || k.Account != "alice (Phone)" {
			t.Fatalf("key = %v secret %q, want issuer totpbox, account \"alice (Phone)\", secret as in the response", k, secret)
		}
		if m["status"] != "pending" || m["expires_at"] == nil {
			t.Fatalf("new device = %v, want pending with expires_at", m)
		}
		id := int64(m["id"].(float64))

		// The secret is never shown again.
		_, raw := h.callRaw("GET", "/api/v1/users/alice/mfa-devices", nil, h.token)
		if strings.Contains(string(raw), secret) || strings.Contains(string(raw), "secret") {
			t.Fatalf("device list shows the secret: %s", raw)
		}

		now := h.clock.Now()
		wrong := enroll.CodeAt(k, enroll.Step(k, now)+5)
		status, e := h.call("POST", devPath("alice", id)+"/confirm", map[string]any{"codes": []string{wrong}})
		if status != 400 || !strings.Contains(e["error"].(string), "does not match") {
			t.Fatalf("confirm with a wrong code = %d %v, want 400 does not match", status, e)
		}
		code := enroll.Code(k, now)
		d := h.mustCall(200, "POST", devPath("alice", id)+"/confirm", map[string]any{"codes": []string{code}})
		if d["status"] != "active" || d["registered"] == nil || d["secret"] != nil {
			t.Fatalf("confirmed device = %v", d)
		}
		status, e = h.call("POST", devPath("alice", id)+"/confirm", map[string]any{"codes": []string{code}})
		if status != 409 || !strings.Contains(e["error"].(string), "already registered") {
			t.Fatalf("second confirm = %d %v, want 409 already registered", status, e)
		}

		// The registration code cannot be replayed at verify.
		status, v := h.call("POST", "/api/v1/verify", map[string]any{"username": "alice", "code": code})
		if status != 401 || v["ok"] != false || v["reason"] != core.ReasonReplay {
			t.Fatalf("verify of the registration code = %d %v, want 401 %q", status, v, core.ReasonReplay)
		}
		h.clock.Advance(30 * time.Second)
		next := enroll.Code(k, h.clock.Now())
		v = h.mustCall(200, "POST", "/api/v1/verify", map[string]any{"username": "alice", "code": next})
		if v["ok"] != true || int64(v["device_id"].(float64)) != id {
			t.Fatalf("verify = %v, want ok with device %d", v, id)
		}
		status, v = h.call("POST", "/api/v1/verify", map[string]any{"username": "alice", "code": next})
		if status != 401 || v["reason"] != core.ReasonReplay {
			t.Fatalf("replayed verify = %d %v, want 401 %q", status, v, core.ReasonReplay)
		}

		h.mustCall(204, "DELETE", devPath("alice", id), nil)
		h.mustCall(404, "DELETE", devPath("alice", id), nil)
		h.clock.Advance(30 * time.Second)
		status, v = h.call("POST", "/api/v1/verify", map[string]any{"username": "alice", "code": enroll.Code(k, h.clock.Now())})
		if status != 401 || v["reason"] != core.ReasonNoDevice {
			t.Fatalf("verify after delete = %d %v, want 401 %q", status, v, core.ReasonNoDevice)
		}

		// Neither the secret nor any code reached the logs.
		logs := h.logs.String()
		for _, s := range []string{secret, code, next, wrong} {
			if strings.Contains(logs, s) {
				t.Fatalf("logs hold a secret or code %q:\n%s", s, logs)
			}
		}
	})
}

func TestVerifyConcurrentSameCode(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) store.Store) {
		h := newHarness(t, open(t), func(c *Config) {
			c.Limits.VerifyPerUser = Rate{PerSecond: -1}
			c.Limits.VerifyPerIP = Rate{PerSecond: -1}
		})
		k, id := h.registered("bob", "Token")
		code := enroll.Code(k, h.clock.Now())
		const n = 64
		var wg sync.WaitGroup
		statuses := make([]int, n)
		reasons := make([]any, n)
		for i := range n {
			wg.Go(func() {
				st, m := h.call("POST", "/api/v1/verify", map[string]any{"username": "bob", "code": code})
				statuses[i], reasons[i] = st, m["reason"]
			})
		}
		wg.Wait()
		ok := 0
		for i, s := range statuses {
			switch {
			case s == 200:
				ok++
			case s == 401 && reasons[i] == core.ReasonReplay:
			default:
				t.Errorf("request %d = %d %v, want 200 or 401 %q", i, s, reasons[i], core.ReasonReplay)
			}
		}
		if ok != 1 {
			t.Fatalf("%d of %d concurrent verifies of one code succeeded, want exactly 1", ok, n)
		}
		d, err := h.st.Device(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if d.FailCount != 0 || !d.LockedUntil.IsZero() {
			t.Fatalf("after replays: fail count %d, locked until %v; replays must not count as failures", d.FailCount, d.LockedUntil)
		}
	})
}

func TestLockoutAndAutoClear(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) store.Store) {
		h := newHarness(t, open(t), func(c *Config) { c.Limits.VerifyPerUser = Rate{PerSecond: -1} })
		if err := h.srv.Core().SaveSettings(context.Background(), func() core.Settings {
			st := core.DefaultSettings()
			st.LockoutThreshold = 3
			st.LockoutClear = 5 * time.Minute
			return st
		}()); err != nil {
			t.Fatal(err)
		}
		k, id := h.registered("carol", "Token")
		bad := enroll.CodeAt(k, enroll.Step(k, h.clock.Now())+100)
		for i := range 3 {
			status, v := h.call("POST", "/api/v1/verify", map[string]any{"username": "carol", "code": bad})
			if status != 401 || v["reason"] != core.ReasonInvalid {
				t.Fatalf("wrong code %d = %d %v, want 401 %q", i+1, status, v, core.ReasonInvalid)
			}
		}
		good := enroll.Code(k, h.clock.Now())
		status, v := h.call("POST", "/api/v1/verify", map[string]any{"username": "carol", "code": good})
		if status != 401 || !strings.HasPrefix(v["reason"].(string), core.ReasonLocked) {
			t.Fatalf("right code while locked = %d %v, want 401 locked", status, v)
		}
		list := h.mustCall(200, "GET", "/api/v1/users/carol/mfa-devices", nil)
		dev := list["mfa_devices"].([]any)[0].(map[string]any)
		if dev["locked_until"] == nil || dev["fail_count"].(float64) != 3 {
			t.Fatalf("locked device = %v, want locked_until and fail_count 3", dev)
		}

		// Auto-clear at verify time, without the janitor.
		h.clock.Advance(5*time.Minute + time.Second)
		good = enroll.Code(k, h.clock.Now())
		if v := h.mustCall(200, "POST", "/api/v1/verify", map[string]any{"username": "carol", "code": good}); v["ok"] != true {
			t.Fatalf("verify after the lockout cleared = %v", v)
		}

		// And by the janitor. The accepted code forgave nothing: three
		// more failures reach the second lockout, twice as long.
		h.clock.Advance(30 * time.Second)
		for range 3 {
			h.call("POST", "/api/v1/verify", map[string]any{"username": "carol", "code": bad})
		}
		h.clock.Advance(5*time.Minute + time.Second)
		h.srv.Sweep(context.Background())
		if d, err := h.st.Device(context.Background(), id); err != nil || d.LockedUntil.IsZero() {
			t.Fatalf("second lockout after the first one's time: %+v %v, want still locked", d, err)
		}
		h.clock.Advance(5 * time.Minute)
		h.srv.Sweep(context.Background())
		d, err := h.st.Device(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if d.FailCount != 6 || d.Lockouts != 2 || !d.LockedUntil.IsZero() {
			t.Fatalf("after the janitor: fail count %d, lockouts %d, locked until %v, want 6, 2 and the lock cleared", d.FailCount, d.Lockouts, d.LockedUntil)
		}
		evs, err := h.st.AuditEvents(context.Background(), 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]int{}
		for _, e := range evs {
			got[e.Action]++
			if strings.Contains(e.Detail, bad) || strings.Contains(e.Detail, good) {
				t.Fatalf("audit event holds a code: %+v", e)
			}
		}
		if got["device.lock"] != 2 || got["device.unlock"] != 2 || got["verify.fail"] != 6 {
			t.Fatalf("audit actions = %v, want 2 device.lock, 2 device.unlock, 6 verify.fail", got)
		}
	})
}

func TestResyncMovesDrift(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) store.Store) {
		h := newHarness(t, open(t), nil)
		k, id := h.registered("dave", "Old phone")
		// The device's clock runs 10 minutes fast: 20 steps.
		ahead := func() time.Time { return h.clock.Now().Add(10 * time.Minute) }
		status, v := h.call("POST", "/api/v1/verify", map[string]any{"username": "dave", "code": enroll.Code(k, ahead())})
		if status != 401 || v["reason"] != core.ReasonInvalid {
			t.Fatalf("verify of a drifted device = %d %v, want 401 %q", status, v, core.ReasonInvalid)
		}
		s := enroll.Step(k, ahead())
		codes := []string{enroll.CodeAt(k, s-1), enroll.CodeAt(k, s)}
		status, e := h.call("POST", devPath("dave", id)+"/resync", map[string]any{"codes": []string{codes[1], codes[0]}})
		if status != 400 {
			t.Fatalf("resync with codes out of order = %d %v, want 400", status, e)
		}
		d := h.mustCall(200, "POST", devPath("dave", id)+"/resync", map[string]any{"codes": codes})
		if d["drift_seconds"].(float64) != 600 {
			t.Fatalf("drift after resync = %v s, want 600", d["drift_seconds"])
		}
		// The console says it in words, the seconds in the title.
		h.admin()
		b := h.browser()
		b.signIn("root", adminPassword, nil, h.clock)
		if _, _, page := b.get("/users/dave/mfa-devices"); !strings.Contains(html.UnescapeString(page), `<span title="Learned drift +600 s (+20 steps of 30 s)">Clock 10 min fast</span>`) {
			t.Fatalf("devices tab after a resync 10 minutes ahead:\n%s", page)
		}
		h.clock.Advance(30 * time.Second)
		if v := h.mustCall(200, "POST", "/api/v1/verify", map[string]any{"username": "dave", "code": enroll.Code(k, ahead())}); v["ok"] != true {
			t.Fatalf("verify after resync = %v", v)
		}
		// Beyond the resync window (±1000 steps) nothing is found.
		far := h.clock.Now().Add(1100 * 30 * time.Second)
		fs := enroll.Step(k, far)
		status, _ = h.call("POST", devPath("dave", id)+"/resync", map[string]any{"codes": []string{enroll.CodeAt(k, fs-1), enroll.CodeAt(k, fs)}})
		if status != 400 {
			t.Fatalf("resync 1100 steps away = %d, want 400", status)
		}
	})
}

func TestPendingRegistrationExpires(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) store.Store) {
		h := newHarness(t, open(t), nil)
		h.mustCall(201, "POST", "/api/v1/users", map[string]any{"username": "erin"})
		m := h.mustCall(201, "POST", "/api/v1/users/erin/mfa-devices", map[string]any{"name": "Phone"})
		k, _ := enroll.ParseURI(m["otpauth_uri"].(string))
		id := int64(m["id"].(float64))
		h.clock.Advance(10*time.Minute + time.Second)
		status, e := h.call("POST", devPath("erin", id)+"/confirm", map[string]any{"codes": []string{enroll.Code(k, h.clock.Now())}})
		if status != http.StatusGone || !strings.Contains(e["error"].(string), "expired") {
			t.Fatalf("confirm after expiry = %d %v, want 410 expired", status, e)
		}
		h.srv.Sweep(context.Background())
		list := h.mustCall(200, "GET", "/api/v1/users/erin/mfa-devices", nil)
		if n := len(list["mfa_devices"].([]any)); n != 0 {
			t.Fatalf("after the janitor %d devices, want the expired registration removed", n)
		}
		// Removed, it is still remembered as expired (for a week), not
		// "not found": the same 410 as before the janitor passed.
		status, e = h.call("POST", devPath("erin", id)+"/confirm", map[string]any{"codes": []string{"123456"}})
		if status != http.StatusGone || !strings.Contains(e["error"].(string), "this registration expired at ") || !strings.HasSuffix(e["error"].(string), "; start again") {
			t.Fatalf("confirm after the janitor = %d %v, want 410 \"this registration expired at …; start again\"", status, e)
		}
		// Another user's id stays unknown.
		h.mustCall(201, "POST", "/api/v1/users", map[string]any{"username": "frank"})
		h.mustCall(404, "POST", devPath("frank", id)+"/confirm", map[string]any{"codes": []string{"123456"}})
		// The name is free again.
		h.mustCall(201, "POST", "/api/v1/users/erin/mfa-devices", map[string]any{"name": "Phone"})
	})
}

func TestTokens(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) store.Store) {
		h := newHarness(t, open(t), nil)
		h.mustCall(201, "POST", "/api/v1/users", map[string]any{"username": "frank"})
		for _, tc := range []struct{ name, token string }{
			{"missing", ""},
			{"unknown", "tbx_not-a-real-token"},
		} {
			status, raw := h.callRaw("GET", "/api/v1/users/frank", nil, tc.token)
			if status != 401 || !strings.Contains(string(raw), "token") {
				t.Errorf("%s token: %d %s, want 401 naming the token", tc.name, status, raw)
			}
		}
		if err := api.RevokeToken(context.Background(), h.st, "test"); err != nil {
			t.Fatal(err)
		}
		// Running servers refuse it within the cache TTL.
		h.clock.Advance(h.srv.cfg.CacheTTL)
		status, raw := h.callRaw("GET", "/api/v1/users/frank", nil, h.token)
		if status != 401 || !strings.Contains(string(raw), "revoked") {
			t.Fatalf("revoked token: %d %s, want 401 revoked", status, raw)
		}
		if err := api.RevokeToken(context.Background(), h.st, "test"); err == nil {
			t.Fatalf("revoking a revoked token again succeeded")
		}
	})
}

func TestAPIBadInput(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) store.Store) {
		h := newHarness(t, open(t), nil)
		h.mustCall(201, "POST", "/api/v1/users", map[string]any{"username": "gina"})
		h.mustCall(201, "POST", "/api/v1/users", map[string]any{"username": "hank"})
		_, hankDev := h.registered("hank", "Hank phone")
		m := h.mustCall(201, "POST", "/api/v1/users/gina/mfa-devices", map[string]any{"name": "Phone"})
		gdev := devPath("gina", int64(m["id"].(float64)))

		tests := []struct {
			name, method, path string
			body               any
			ctype              string
			status             int
			want               string
		}{
			{"malformed JSON", "POST", "/api/v1/users", `{"username": "x"`, "", 400, "malformed JSON: body ends"},
			{"syntax error", "POST", "/api/v1/users", `{"username": x}`, "", 400, "malformed JSON: invalid character"},
			{"empty body", "POST", "/api/v1/users", ``, "", 400, "empty body"},
			{"not an object", "POST", "/api/v1/users", `[1,2]`, "", 400, "want a JSON object"},
			{"unknown field", "POST", "/api/v1/users", `{"username": "x", "role": "admin"}`, "", 400, `unknown field "role"`},
			{"wrong type", "POST", "/api/v1/users", `{"username": 7}`, "", 400, `field "username" must be a string`},
			{"trailing data", "POST", "/api/v1/users", `{"username": "x"} {}`, "", 400, "data after the object"},
			{"content type", "POST", "/api/v1/users", `{"username": "x"}`, "text/plain", 415, "Content-Type must be application/json"},
			{"missing username", "POST", "/api/v1/users", `{}`, "", 400, `missing field "username"`},
			{"bad username", "POST", "/api/v1/users", `{"username": "a b"}`, "", 400, "username may hold only"},
			{"long username", "POST", "/api/v1/users", `{"username": "` + strings.Repeat("a", 65) + `"}`, "", 400, "longer than 64"},
			{"bad email", "POST", "/api/v1/users", `{"username": "ok", "email": "nope"}`, "", 400, "not a valid address"},
			{"taken username", "POST", "/api/v1/users", `{"username": "GINA"}`, "", 409, `user "gina" already exists`},
			{"unknown user", "GET", "/api/v1/users/nobody", nil, "", 404, `no user "nobody"`},
			{"unknown user devices", "POST", "/api/v1/users/nobody/mfa-devices", `{"name": "x"}`, "", 404, `no user "nobody"`},
			{"empty device name", "POST", "/api/v1/users/gina/mfa-devices", `{"name": " "}`, "", 400, "friendly name is empty"},
			{"bad device name", "POST", "/api/v1/users/gina/mfa-devices", `{"name": "a/b"}`, "", 400, `not “/”`},
			{"long device name", "POST", "/api/v1/users/gina/mfa-devices", `{"name": "` + strings.Repeat("x", 65) + `"}`, "", 400, "longer than 64"},
			{"taken device name", "POST", "/api/v1/users/gina/mfa-devices", `{"name": "phone"}`, "", 409, "already has an MFA device named"},
			{"bad kind", "POST", "/api/v1/users/gina/mfa-devices", `{"name": "x", "kind": "sms"}`, "", 400, `kind must be`},
			{"unknown device", "POST", "/api/v1/users/gina/mfa-devices/999999/confirm", `{"codes": ["123456"]}`, "", 404, "no MFA device 999999"},
			{"device id not a number", "DELETE", "/api/v1/users/gina/mfa-devices/abc", nil, "", 404, "no MFA device"},
			{"another user's device", "DELETE", devPath("gina", hankDev), nil, "", 404, "no MFA device"},
			{"missing codes", "POST", gdev + "/confirm", `{}`, "", 400, `missing field "codes"`},
			{"two codes where one is due", "POST", gdev + "/confirm", `{"codes": ["123456", "654321"]}`, "", 400, "type 1 code, not 2"},
			{"code not digits", "POST", gdev + "/confirm", `{"codes": ["12a456"]}`, "", 400, "only digits"},
			{"code too short", "POST", gdev + "/confirm", `{"codes": ["12345"]}`, "", 400, "6 or 8 digits, not 5"},
			{"codes not strings", "POST", gdev + "/confirm", `{"codes": [123456]}`, "", 400, `must be a string`},
			{"resync one code", "POST", devPath("hank", hankDev) + "/resync", `{"codes": ["123456"]}`, "", 400, "type 2 consecutive codes, not 1"},
			{"resync pending", "POST", gdev + "/resync", `{"codes": ["123456", "123456"]}`, "", 409, "not registered yet"},
			{"verify missing code", "POST", "/api/v1/verify", `{"username": "hank"}`, "", 400, `missing field "code"`},
			{"verify bad code", "POST", "/api/v1/verify", `{"username": "hank", "code": "abcdef"}`, "", 400, "only digits"},
			{"verify bad ip", "POST", "/api/v1/verify", `{"username": "hank", "code": "123456", "ip": "nowhere"}`, "", 400, `ip "nowhere" is not an IP address`},
			{"verify unknown user", "POST", "/api/v1/verify", `{"username": "nobody", "code": "123456"}`, "", 404, `no user "nobody"`},
			{"unknown endpoint", "GET", "/api/v1/nothing", nil, "", 404, "no API endpoint"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				req := tc.body
				status, raw := func() (int, []byte) {
					if tc.ctype == "" {
						return h.callRaw(tc.method, tc.path, req, h.token)
					}
					return h.callWithType(tc.method, tc.path, req.(string), tc.ctype)
				}()
				var e struct{ Error string }
				if err := json.Unmarshal(raw, &e); err != nil || e.Error == "" {
					t.Fatalf("%s %s: body %s is not {\"error\": ...}", tc.method, tc.path, raw)
				}
				if status != tc.status || !strings.Contains(e.Error, tc.want) {
					t.Fatalf("%s %s = %d %q, want %d containing %q", tc.method, tc.path, status, e.Error, tc.status, tc.want)
				}
			})
		}
	})
}

func TestDeviceLimit(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) store.Store) {
		h := newHarness(t, open(t), nil)
		st := core.DefaultSettings()
		st.MaxDevices = 2
		if err := h.srv.Core().SaveSettings(context.Background(), st); err != nil {
			t.Fatal(err)
		}
		h.mustCall(201, "POST", "/api/v1/users", map[string]any{"username": "ivy"})
		h.mustCall(201, "POST", "/api/v1/users/ivy/mfa-devices", map[string]any{"name": "one"})
		h.mustCall(201, "POST", "/api/v1/users/ivy/mfa-devices", map[string]any{"name": "two"})
		status, e := h.call("POST", "/api/v1/users/ivy/mfa-devices", map[string]any{"name": "three"})
		if status != 409 || !strings.Contains(e["error"].(string), "already has 2 MFA devices, the most allowed") {
			t.Fatalf("third device = %d %v, want 409 naming the limit", status, e)
		}
		// Expired registrations do not count.
		h.clock.Advance(11 * time.Minute)
		h.mustCall(201, "POST", "/api/v1/users/ivy/mfa-devices", map[string]any{"name": "three"})
	})
}

func TestVerifyRateLimits(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) store.Store) {
		h := newHarness(t, open(t), func(c *Config) {
			c.Limits.VerifyPerUser = Rate{PerSecond: 0.5, Burst: 3}
			c.Limits.VerifyPerIP = Rate{PerSecond: 0.5, Burst: 5}
			c.CacheTTL = -1
		})
		h.registered("jack", "Token")
		h.registered("kate", "Token")
		body := func(user, ip string) map[string]any {
			return map[string]any{"username": user, "code": "000000", "ip": ip}
		}
		for i := range 3 {
			if status, _ := h.call("POST", "/api/v1/verify", body("jack", "198.51.100.1")); status != 401 {
				t.Fatalf("attempt %d = %d, want 401", i+1, status)
			}
		}
		status, raw := h.callRaw("POST", "/api/v1/verify", body("jack", "198.51.100.2"), h.token)
		if status != 429 || !strings.Contains(string(raw), core.ReasonRateLimited) {
			t.Fatalf("4th attempt for one user = %d %s, want 429", status, raw)
		}
		// Per address: kate from the address that already tried 3 times.
		h.call("POST", "/api/v1/verify", body("kate", "198.51.100.1"))
		h.call("POST", "/api/v1/verify", body("kate", "198.51.100.1"))
		if status, _ := h.call("POST", "/api/v1/verify", body("kate", "198.51.100.1")); status != 429 {
			t.Fatalf("6th attempt from one address = %d, want 429", status)
		}
		// Tokens come back with time.
		h.clock.Advance(10 * time.Second)
		if status, _ := h.call("POST", "/api/v1/verify", body("jack", "198.51.100.3")); status != 401 {
			t.Fatalf("after waiting = %d, want 401 (checked, not limited)", status)
		}
	})
}
