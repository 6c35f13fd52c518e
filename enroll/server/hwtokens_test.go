package server

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/url"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/totpbox/totpbox/enroll"
	"github.com/totpbox/totpbox/enroll/seedfile"
	"github.com/totpbox/totpbox/enroll/server/core"
	"github.com/totpbox/totpbox/enroll/store"
	"github.com/totpbox/totpbox/enroll/store/storetest"
	"github.com/totpbox/totpbox/internal/testkit"
)

// The tokens these tests import: a TOTP token pre-assigned to alice and
// an 8-digit HOTP token whose next counter is 5.
var (
	totpSecret = []byte("12345678901234567890")
	hotpSecret = []byte("abcdefghijklmnopqrst")
)

// oathtool computes a code with the real oathtool: TOTP at t, or HOTP at
// counter when t is zero.
func oathtool(t *testing.T, secret []byte, digits int, at time.Time, counter int64) string {
	t.Helper()
	bin := testkit.RequireProgram(t, "oathtool", "oathtool")
	args := []string{"-d", fmt.Sprint(digits)}
	if at.IsZero() {
		args = append(args, "-c", fmt.Sprint(counter))
	} else {
		args = append(args, "--totp", "-N", at.UTC().Format("2006-01-02 15:04:05 UTC"))
	}
	out, err := exec.Command(bin, append(args, hex.EncodeToString(secret))...).Output()
	if err != nil {
		t.Fatalf("oathtool %v: %v", args, err)
	}
	return strings.TrimSpace(string(out))
}

// importTokens imports the two test tokens into h's store, sealed with
// h's master key, as `totpserver tokens import` does.
func importTokens(t *testing.T, h *harness) {
	t.Helper()
	tokens := []seedfile.Token{
		{Serial: "HW-T1", Manufacturer: "Token2", Model: "C202", Owner: "alice", Kind: seedfile.TOTP,
			Key: enroll.Key{Secret: totpSecret, Algorithm: enroll.SHA1, Digits: 6, Period: 30 * time.Second}},
		{Serial: "HW-H1", Manufacturer: "Feitian", Kind: seedfile.HOTP, Counter: 5,
			Key: enroll.Key{Secret: hotpSecret, Algorithm: enroll.SHA1, Digits: 8, Period: 30 * time.Second}},
	}
	if _, err := core.ImportHardwareTokens(context.Background(), h.st, h.srv.cfg.Sealer, tokens, "test", h.clock.Now()); err != nil {
		t.Fatal(err)
	}
}

// TestHardwareTokensAssign: the imported tokens list by serial without
// their secrets; assigning needs a code from the token (oathtool's),
// makes an active MFA device of kind hardware named by the serial, once;
// the device verifies.
func TestHardwareTokensAssign(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) store.Store) {
		h := newHarness(t, open(t), nil)
		importTokens(t, h)
		h.mustCall(201, "POST", "/api/v1/users", map[string]any{"username": "alice"})
		h.mustCall(201, "POST", "/api/v1/users", map[string]any{"username": "bob"})

		_, raw := h.callRaw("GET", "/api/v1/hardware-tokens", nil, h.token)
		if strings.Contains(string(raw), "secret") || strings.Contains(string(raw), hex.EncodeToString(totpSecret)) {
			t.Fatalf("hardware token list shows a secret: %s", raw)
		}
		list := h.mustCall(200, "GET", "/api/v1/hardware-tokens", nil)["hardware_tokens"].([]any)
		if len(list) != 2 {
			t.Fatalf("hardware tokens = %v, want 2", list)
		}
		first, second := list[0].(map[string]any), list[1].(map[string]any)
		if first["serial"] != "HW-H1" || first["kind"] != "hotp" || first["assigned"] != false ||
			second["serial"] != "HW-T1" || second["kind"] != "totp" || second["username"] != "alice" {
			t.Fatalf("hardware tokens = %v, %v", first, second)
		}

		now := h.clock.Now()
		code := oathtool(t, totpSecret, 6, now, 0)
		wrong := oathtool(t, totpSecret, 6, now.Add(10*time.Minute), 0)
		for _, tc := range []struct {
			serial, user, code string
			status             int
			says               string
		}{
			{"HW-T1", "alice", wrong, 400, "does not match hardware token HW-T1"},
			{"HW-T1", "alice", "12ab", 400, "digits"},
			{"HW-T1", "nobody", code, 404, `no user "nobody"`},
			{"HW-NONE", "alice", code, 404, `no hardware token "HW-NONE"`},
		} {
			status, e := h.call("POST", "/api/v1/hardware-tokens/"+tc.serial+"/assign", map[string]any{"username": tc.user, "code": tc.code})
			if msg, _ := e["error"].(string); status != tc.status || !strings.Contains(msg, tc.says) {
				t.Errorf("assign %s to %s with %q = %d %v, want %d %q", tc.serial, tc.user, tc.code, status, e, tc.status, tc.says)
			}
		}
		d := h.mustCall(201, "POST", "/api/v1/hardware-tokens/HW-T1/assign", map[string]any{"username": "alice", "code": code})
		if d["kind"] != "hardware" || d["name"] != "HW-T1" || d["status"] != "active" || d["type"] != "totp" {
			t.Fatalf("assigned device = %v", d)
		}
		status, e := h.call("POST", "/api/v1/hardware-tokens/HW-T1/assign", map[string]any{"username": "bob", "code": code})
		if status != 409 || !strings.Contains(e["error"].(string), "already assigned") {
			t.Fatalf("assign HW-T1 again = %d %v, want 409 already assigned", status, e)
		}
		// The code that assigned it was used; the next one verifies.
		if status, reason := h.verify("alice", code); status != 401 || reason != core.ReasonReplay {
			t.Errorf("verify the assigning code = %d %q, want 401 replay", status, reason)
		}
		h.clock.Advance(30 * time.Second)
		if status, reason := h.verify("alice", oathtool(t, totpSecret, 6, h.clock.Now(), 0)); status != 200 {
			t.Errorf("verify alice's next TOTP code = %d %q, want 200", status, reason)
		}

		// HOTP: the code of counter 7 (next expected 5) is in the look-ahead window.
		d = h.mustCall(201, "POST", "/api/v1/hardware-tokens/HW-H1/assign", map[string]any{"username": "bob", "code": oathtool(t, hotpSecret, 8, time.Time{}, 7)})
		if d["type"] != "hotp" || d["digits"] != float64(8) {
			t.Fatalf("assigned HOTP device = %v", d)
		}
		list = h.mustCall(200, "GET", "/api/v1/hardware-tokens", nil)["hardware_tokens"].([]any)
		for _, x := range list {
			if m := x.(map[string]any); m["assigned"] != true || m["device_id"] == nil {
				t.Errorf("after assigning both: %v", m)
			}
		}
		if list[0].(map[string]any)["assigned_to"] != "bob" || list[1].(map[string]any)["assigned_to"] != "alice" {
			t.Errorf("assigned to: %v", list)
		}
		events, err := h.st.AuditEvents(context.Background(), 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range events {
			if e.Action == "hardware-token.import" || e.Action == "device.register" || e.Action == "hardware-token.assign.fail" {
				got = append(got, e.Action+" "+e.Detail)
			}
		}
		want := []string{
			`device.register registered "HW-H1" (hardware token HW-H1, hotp)`,
			`device.register registered "HW-T1" (hardware token HW-T1, totp)`,
			"hardware-token.assign.fail code did not match",
			"hardware-token.import imported 2 hardware tokens, HW-T1 to HW-H1",
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("audit (newest first):\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})
}

// TestHOTPVerify: an HOTP device accepts a code within the look-ahead
// window once (the counter moves past it), refuses one beyond it and
// a replay, locks as a TOTP device does, and a resync with two
// consecutive codes within 100 brings it back — through /api/v1/verify.
func TestHOTPVerify(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) store.Store) {
		h := newHarness(t, open(t), func(c *Config) { c.Limits.VerifyPerUser = Rate{PerSecond: -1} })
		st := core.DefaultSettings()
		st.LockoutThreshold = 3
		if err := h.srv.Core().SaveSettings(context.Background(), st); err != nil {
			t.Fatal(err)
		}
		importTokens(t, h)
		h.mustCall(201, "POST", "/api/v1/users", map[string]any{"username": "bob"})
		d := h.mustCall(201, "POST", "/api/v1/hardware-tokens/HW-H1/assign", map[string]any{"username": "bob", "code": oathtool(t, hotpSecret, 8, time.Time{}, 5)})
		id := int64(d["id"].(float64))
		code := func(c int64) string { return oathtool(t, hotpSecret, 8, time.Time{}, c) }
		counter := func() int64 {
			dev, err := h.st.Device(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			return dev.Counter
		}
		steps := []struct {
			counter int64
			status  int
			reason  string
			next    int64 // the stored counter afterwards
		}{
			{6, 200, "", 7},
			{6, 401, core.ReasonReplay, 7},    // each code once
			{17, 200, "", 18},                 // 10 ahead of 7: the window's edge
			{12, 401, core.ReasonReplay, 18},  // skipped over: used
			{29, 401, core.ReasonInvalid, 18}, // 11 ahead: beyond the window
		}
		for _, s := range steps {
			status, reason := h.verify("bob", code(s.counter))
			if status != s.status || reason != s.reason || counter() != s.next {
				t.Fatalf("verify code of counter %d = %d %q, counter %d; want %d %q, counter %d", s.counter, status, reason, counter(), s.status, s.reason, s.next)
			}
		}
		// Two more misses lock it (threshold 3), as for TOTP: then even
		// the right code is refused as locked.
		h.verify("bob", code(40))
		h.verify("bob", code(41))
		if status, reason := h.verify("bob", code(18)); status != 401 || !strings.Contains(reason, core.ReasonLocked) {
			t.Fatalf("verify right code on a locked device = %d %q, want locked", status, reason)
		}
		// Resync: two consecutive codes within 100 of the counter, even
		// while locked; it clears the lock and moves the counter.
		if status, e := h.call("POST", devPath("bob", id)+"/resync", map[string]any{"codes": []string{code(130), code(131)}}); status != 400 {
			t.Fatalf("resync beyond 100 = %d %v, want 400", status, e)
		}
		h.mustCall(200, "POST", devPath("bob", id)+"/resync", map[string]any{"codes": []string{code(90), code(91)}})
		if got := counter(); got != 92 {
			t.Fatalf("counter after resync = %d, want 92", got)
		}
		if status, reason := h.verify("bob", code(91)); status != 401 || reason != core.ReasonReplay {
			t.Errorf("verify resync's code = %d %q, want replay", status, reason)
		}
		if status, reason := h.verify("bob", code(92)); status != 200 {
			t.Errorf("verify after resync = %d %q, want 200", status, reason)
		}
	})
}

// TestHardwareTokensConsole: the console's Hardware tokens page lists
// the imported tokens, its form assigns one with a code from the token
// (proof of possession); then the admin signs in with the token's HOTP
// codes, each code once.
func TestHardwareTokensConsole(t *testing.T) {
	h := newHarness(t, storeSQLite(t), nil)
	h.admin()
	importTokens(t, h)
	b := h.browser()
	b.signIn("root", adminPassword, nil, h.clock)
	_, _, page := b.get("/hardware-tokens?serial=HW-T1")
	for _, want := range []string{`href="/hardware-tokens"`, "HW-H1", "HW-T1", "HOTP (event)", "Token2 C202", `value="alice"`, "Assign hardware token"} {
		if !strings.Contains(page, want) {
			t.Errorf("Hardware tokens page lacks %q", want)
		}
	}
	form := url.Values{"serial": {"HW-H1"}, "username": {"root"}, "code": {oathtool(t, hotpSecret, 8, time.Time{}, 99)}}
	status, _, body := b.post("/hardware-tokens/assign", form, csrf(t, page))
	if status != 400 || !strings.Contains(body, "does not match hardware token HW-H1") {
		t.Fatalf("assign with a code beyond the look-ahead window = %d, want 400 naming the token", status)
	}
	form.Set("code", oathtool(t, hotpSecret, 8, time.Time{}, 5))
	_, path, body := b.post("/hardware-tokens/assign", form, csrf(t, body))
	if path != "/hardware-tokens" || !strings.Contains(body, "Hardware token HW-H1 assigned to root") || !strings.Contains(body, `<a href="/users/root">root</a>`) {
		t.Fatalf("after assigning: at %s:\n%s", path, body)
	}
	_, _, devices := b.get("/portal")
	if !strings.Contains(devices, "Hardware token (HOTP)") || !strings.Contains(devices, "Counter 6") {
		t.Errorf("the admin's MFA devices do not show the HOTP hardware token with its counter")
	}
	// The resync page speaks of presses, not of a clock, and moves the
	// counter to two consecutive codes 50 presses ahead.
	resync := regexp.MustCompile(`href="([^"]*/mfa-devices/\d+/resync)"`).FindStringSubmatch(devices)
	if resync == nil {
		t.Fatal("no Resync link for the hardware token")
	}
	_, _, page = b.get(resync[1])
	if !strings.Contains(page, "event token") || !strings.Contains(page, "as far as 100 codes ahead") {
		t.Errorf("HOTP resync page does not explain presses and the 100-code window")
	}
	_, _, page = b.post(resync[1], url.Values{"code1": {oathtool(t, hotpSecret, 8, time.Time{}, 50)}, "code2": {oathtool(t, hotpSecret, 8, time.Time{}, 51)}}, csrf(t, page))
	if !strings.Contains(page, "Counter 52") {
		t.Errorf("after the console's resync the device does not show Counter 52")
	}
	code := oathtool(t, hotpSecret, 8, time.Time{}, 53)

	for i, signedIn := range []bool{true, false} {
		b := h.browser()
		_, path, body := b.post("/signin", url.Values{"username": {"root"}, "password": {adminPassword}}, "")
		if path != "/signin/code" {
			t.Fatalf("sign in: at %s, want /signin/code", path)
		}
		_, path, _ = b.post("/signin/code", url.Values{"code": {code}}, csrf(t, body))
		if got := path != "/signin/code" && path != "/signin"; got != signedIn {
			t.Errorf("sign-in %d with the code of counter 53: at %s, signed in %v, want %v", i+1, path, got, signedIn)
		}
	}
}
