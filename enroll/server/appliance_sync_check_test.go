package server

import (
	"context"
	"crypto/ed25519"
	"math"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/totpbox/totpbox/enroll/proto"
	"github.com/totpbox/totpbox/enroll/store"
	"github.com/totpbox/totpbox/enroll/store/storetest"
)

// TestSyncChecksWhatTheApplianceReports: every number and string a sync
// reports is checked before anything is stored; a bad one is a 400 that
// names it, and the appliance admin API keeps answering. Values stored
// before the check (a clock_ppm of +Inf, a version with a bidi override)
// do not break the list either (issue 22, item 5).
func TestSyncChecksWhatTheApplianceReports(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) store.Store) {
		h := newHarness(t, open(t), nil)
		kiosk := h.newAppliance()
		h.mustCall(201, "POST", "/api/v1/appliances", map[string]any{"code": kiosk.pairingCode(), "name": "Lobby"})
		kiosk.learnID()
		h.clock.Advance(time.Second)
		good := func() url.Values {
			return proto.SyncQuery{Version: "1.2.3", Accounts: 2, Secrets: proto.SecretsTPM,
				Clock: &proto.ClockReport{Time: h.clock.Now(), Bound: time.Millisecond, State: "SYNCED", Frequency: 12.5}}.Encode()
		}
		for _, tc := range []struct {
			key, value, want string
		}{
			{"clock_ppm", "+Inf", "clock_ppm"},
			{"clock_ppm", "-Inf", "clock_ppm"},
			{"clock_ppm", "NaN", "clock_ppm"},
			{"clock_ppm", "1e300", "clock_ppm"},
			{"version", "1.2.3\u202egnp.exe", "version"},
			{"version", "1.2.3\nforged line", "version"},
			{"version", "1.2.3\x1b[31m", "version"},
			{"version", "1.2\u200b.3", "version"},
			{"version", "\xff\xfe", "version"},
			{"clock_state", "SYNCED\u202e", "clock_state"},
			{"clock_state", "BOGUS", "clock_state"},
			{"clock_time", "0001-01-01T00:00:00Z", "clock_time"},
			{"clock_time", "9999-12-31T23:59:59Z", "clock_time"},
			{"accounts", "99999999999", "accounts"},
		} {
			q := good()
			q.Set(tc.key, tc.value)
			h.clock.Advance(time.Second)
			code, body := kiosk.do("GET", proto.ChangesPath(kiosk.id)+"?"+q.Encode(), nil, nil)
			if code != 400 || !strings.Contains(body, tc.want) || strings.Count(strings.TrimSpace(body), "\n") > 0 {
				t.Errorf("sync with %s=%q = %d %s, want 400 naming %s in one line", tc.key, tc.value, code, body, tc.want)
			}
			l := h.mustCall(200, "GET", "/api/v1/appliances", nil)["appliances"].([]any)
			if a := l[0].(map[string]any); a["version"] != "1.2.3" {
				t.Fatalf("after a refused sync with %s=%q the stored version is %q", tc.key, tc.value, a["version"])
			}
		}
		h.clock.Advance(time.Second)
		if code, body := kiosk.do("GET", proto.ChangesPath(kiosk.id)+"?"+good().Encode(), nil, nil); code != 200 {
			t.Fatalf("a good sync = %d %s", code, body)
		}

		// What a server without the check stored.
		pub := kiosk.sign.Public().(ed25519.PublicKey)
		now := h.clock.Now()
		_, err := h.st.SyncAppliance(context.Background(), store.SyncRequest{
			SignKey: pub, KeyID: proto.KeyID(pub), Nonce: "stored-before-the-check", NonceExpires: now.Add(time.Hour),
			Seen: store.ApplianceSeen{At: now, Version: "9.9\u202e9", Accounts: 1, Secrets: proto.SecretsTPM,
				Clock: store.ClockReport{ApplianceTime: now, Bound: time.Millisecond, State: "SYNCED", Frequency: math.Inf(1), At: now}},
			Now: now, Limit: 10,
		})
		if err != nil {
			t.Fatal(err)
		}
		l := h.mustCall(200, "GET", "/api/v1/appliances", nil)["appliances"].([]any)
		a := l[0].(map[string]any)
		if v, _ := a["version"].(string); strings.ContainsRune(v, '\u202e') {
			t.Errorf("the API shows a stored version with its bidi override: %q", v)
		}
		if c, _ := a["clock"].(map[string]any); c == nil || c["frequency_ppm"] != nil {
			t.Errorf("a stored clock_ppm of +Inf: clock %v, want frequency_ppm null", a["clock"])
		}
		h.mustCall(200, "GET", "/api/v1/appliances/Lobby", nil)
	})
}
