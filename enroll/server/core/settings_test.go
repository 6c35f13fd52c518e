package core

import (
	"context"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/totpbox/totpbox/enroll"
	"github.com/totpbox/totpbox/enroll/store"
)

// TestSaveSettings: each setting out of range is refused with a 400
// naming it and nothing is stored; a good change is stored, read back
// through the cache, and governs what follows.
func TestSaveSettings(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		mod  func(*Settings)
		msg  string
	}{
		{"empty issuer", func(s *Settings) { s.Issuer = " " }, "issuer name is empty"},
		{"issuer with a colon", func(s *Settings) { s.Issuer = "a:b" }, "must not contain a colon"},
		{"long issuer", func(s *Settings) { s.Issuer = strings.Repeat("x", 65) }, "longer than 64"},
		{"three codes", func(s *Settings) { s.RegistrationCodes = 3 }, "must be 1 or 2, not 3"},
		{"wide window", func(s *Settings) { s.VerifyWindow = 11 }, "must be 0 to 10, not 11"},
		{"no threshold", func(s *Settings) { s.LockoutThreshold = 0 }, "must be 1 to 1000, not 0"},
		{"short lock", func(s *Settings) { s.LockoutClear = time.Second }, "must last 1 minute to 7 days"},
		{"no lockout levels", func(s *Settings) { s.LockoutMax = 0 }, "must be 1 to 20, not 0"},
		{"no devices", func(s *Settings) { s.MaxDevices = 0 }, "must be 1 to 100, not 0"},
	} {
		st := DefaultSettings()
		tc.mod(&st)
		failure(t, tc.name, f.core.SaveSettings(ctx, st), 400, tc.msg)
	}
	if m, err := f.st.Settings(ctx); err != nil || len(m) != 0 {
		t.Fatalf("refused settings stored: %v, %v", m, err)
	}
	want := DefaultSettings()
	want.Issuer, want.SelfService, want.VerifyWindow, want.LockoutClear, want.RequireAdminMFA = "Example Corp", true, 0, 90*time.Minute, true
	if err := f.core.SaveSettings(ctx, want); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(10 * time.Second) // past the cache
	got, err := f.core.Settings(ctx)
	if err != nil || got != want {
		t.Fatalf("settings read back = %+v, %v; want %+v", got, err, want)
	}
	// A window of 0 accepts the current code only.
	_, _, k := f.registered("alice")
	f.clock.Advance(30 * time.Second)
	if res := f.verify("alice", enroll.CodeAt(k, enroll.Step(k, f.clock.Now())+1)); res.OK {
		t.Error("a code one step ahead was accepted with a window of 0")
	}
	if _, key, err := f.core.StartRegistration(ctx, System, f.user("bob"), "Phone", ""); err != nil || key.Issuer != "Example Corp" {
		t.Errorf("new key's issuer = %q, %v; want the saved issuer", key.Issuer, err)
	}
}

// TestStoredSettingsThatDoNotParse: a stored value another version wrote
// badly is an error naming the setting, not a silent default.
func TestStoredSettingsThatDoNotParse(t *testing.T) {
	for _, tc := range []struct{ name, value, msg string }{
		{"verify_window", "wide", `setting verify_window: "wide" is not a whole number`},
		{"self_service", "maybe", `setting self_service: "maybe" is not true or false`},
		{"require_admin_mfa", "2", `setting require_admin_mfa: "2" is not true or false`},
		{"lockout_clear", "10", `setting lockout_clear: "10" is not a duration`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil)
			if err := f.st.SetSetting(context.Background(), tc.name, tc.value); err != nil {
				t.Fatal(err)
			}
			if _, err := f.core.Settings(context.Background()); err == nil || err.Error() != tc.msg {
				t.Fatalf("Settings() = %v, want %q", err, tc.msg)
			}
		})
	}
}

// TestParseAuditQuery: the audit export's filters, and a 400 naming each
// bad one.
func TestParseAuditQuery(t *testing.T) {
	for _, tc := range []struct {
		query string
		want  store.AuditQuery
		msg   string
	}{
		{"", store.AuditQuery{Limit: 100}, ""},
		{"after=42&limit=5&type=device.*&user=alice&since=2026-12-01T00:00:00Z",
			store.AuditQuery{After: 42, Limit: 5, Action: "device.*", User: "alice", Since: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}, ""},
		{"after=-1", store.AuditQuery{}, "after must be a cursor"},
		{"limit=1001", store.AuditQuery{}, "limit must be a whole number from 1 to 1000"},
		{"limit=0", store.AuditQuery{}, "limit must be a whole number from 1 to 1000"},
		{"user=" + strings.Repeat("a", 201), store.AuditQuery{}, "user must be valid text"},
		{"since=yesterday", store.AuditQuery{}, "since must be an RFC 3339 time"},
	} {
		v, err := url.ParseQuery(tc.query)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseAuditQuery(v)
		if tc.msg != "" {
			failure(t, tc.query, err, 400, tc.msg)
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseAuditQuery(%q) = %+v, %v; want %+v", tc.query, got, err, tc.want)
		}
	}
	if c := AuditCursor(nil, 7); c != "7" {
		t.Errorf("cursor of an empty page = %q, want the one it followed", c)
	}
	if c := AuditCursor([]store.AuditEvent{{ID: 8}, {ID: 9}}, 7); c != "9" {
		t.Errorf("cursor = %q, want the last id", c)
	}
}

// TestMetrics: verifies are counted by result and lockouts counted; the
// scrape reads pending registrations and appliances from the store.
func TestMetrics(t *testing.T) {
	f := newFixture(t, nil)
	f.settings(func(st *Settings) { st.LockoutThreshold = 2 })
	_, _, k := f.registered("alice")
	f.pending(f.user("bob"), "Phone")
	f.clock.Advance(30 * time.Second)
	f.verify("alice", enroll.Code(k, f.clock.Now()))
	f.verify("alice", enroll.Code(k, f.clock.Now()))
	for range 3 {
		f.verify("alice", enroll.CodeAt(k, enroll.Step(k, f.clock.Now())+100))
	}
	f.core.Verify(context.Background(), System, "nobody", "123456", "192.0.2.7")
	w := httptest.NewRecorder()
	f.core.MetricsHandler().ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	body := w.Body.String()
	for _, line := range []string{
		`totpserver_verifies_total{result="ok"} 1`,
		`totpserver_verifies_total{result="replay"} 1`,
		`totpserver_verifies_total{result="invalid"} 2`,
		`totpserver_verifies_total{result="locked"} 1`,
		`totpserver_verifies_total{result="unknown_user"} 1`,
		`totpserver_lockouts_total 1`,
		`totpserver_pending_registrations 1`,
		`totpserver_appliances_paired 0`,
		`totpserver_store_scrape_errors 0`,
	} {
		if !strings.Contains(body, line+"\n") {
			t.Errorf("metrics lack %q", line)
		}
	}
}
