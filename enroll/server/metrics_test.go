package server

import (
	"github.com/totpbox/totpbox/enroll/store/storetest"

	"github.com/totpbox/totpbox/enroll/server/core"

	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/totpbox/totpbox/enroll"
	"github.com/totpbox/totpbox/enroll/proto"
	"github.com/totpbox/totpbox/enroll/store"
)

func TestMetrics(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) store.Store) {
		h := newHarness(t, open(t), nil)
		// A second server in the same process has metrics of its own.
		other := newHarness(t, open(t), nil)

		st := core.DefaultSettings()
		st.LockoutThreshold = 3
		if err := h.srv.Core().SaveSettings(context.Background(), st); err != nil {
			t.Fatal(err)
		}
		k, _ := h.registered("alice", "Phone")
		verify := func(user, code string) {
			t.Helper()
			h.call("POST", "/api/v1/verify", map[string]any{"username": user, "code": code})
		}
		good := enroll.Code(k, h.clock.Now())
		wrong := enroll.CodeAt(k, enroll.Step(k, h.clock.Now())+7)
		verify("alice", good)
		verify("alice", good)
		verify("nobody", good)
		for range 3 {
			verify("alice", wrong)
		}
		verify("alice", wrong)
		h.mustCall(201, "POST", "/api/v1/users/alice/mfa-devices", map[string]any{"name": "Spare"})

		kiosk := h.newAppliance()
		in, err := h.srv.Appliances().Pair(context.Background(), kiosk.pairingCode(), "Lobby kiosk 3")
		if err != nil {
			t.Fatal(err)
		}
		kiosk.id = in.ID
		kiosk.sync(&proto.ClockReport{Time: h.clock.Now().Add(-250 * time.Millisecond), Bound: 40 * time.Millisecond, State: "SYNCED"})
		h.mustCall(201, "POST", "/api/v1/users/alice/mfa-devices", map[string]any{"name": "Kiosk", "appliance": in.ID})
		h.clock.Advance(120 * time.Millisecond)
		kiosk.sync(nil)
		kiosk.sync(nil) // the offer again: timed once
		kiosk.do("GET", proto.ChangesPath("someone-else"), nil, nil)

		m := scrape(t, h)
		want := map[string]float64{
			`totpserver_verifies_total{result="ok"}`:                                                    1,
			`totpserver_verifies_total{result="replay"}`:                                                1,
			`totpserver_verifies_total{result="unknown_user"}`:                                          1,
			`totpserver_verifies_total{result="invalid"}`:                                               3,
			`totpserver_verifies_total{result="locked"}`:                                                1,
			`totpserver_verifies_total{result="rate_limited"}`:                                          0,
			`totpserver_lockouts_total`:                                                                 1,
			`totpserver_pending_registrations`:                                                          2,
			`totpserver_appliances_paired`:                                                              1,
			`totpserver_appliances_online`:                                                              0,
			`totpserver_appliances_clock_warning`:                                                       0,
			`totpserver_offers_sent_total`:                                                              1,
			`totpserver_offer_delivery_seconds_count`:                                                   1,
			`totpserver_offer_delivery_seconds_sum`:                                                     0.12,
			`totpserver_appliance_requests_total{code="200",endpoint="pairing"}`:                        1,
			`totpserver_appliance_requests_total{code="200",endpoint="changes"}`:                        3,
			`totpserver_appliance_requests_total{code="403",endpoint="changes"}`:                        1,
			`totpserver_appliance_clock_offset_seconds{appliance="` + in.ID + `",name="Lobby kiosk 3"}`: 0.25,
			`totpserver_appliance_clock_bound_seconds{appliance="` + in.ID + `",name="Lobby kiosk 3"}`:  0.04,
			`totpserver_store_scrape_errors`:                                                            0,
		}
		for k, v := range want {
			got, ok := m[k]
			if !ok || got < v-1e-9 || got > v+1e-9 {
				t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
			}
		}
		if m["go_goroutines"] == 0 {
			t.Errorf("no Go runtime metrics")
		}

		o := scrape(t, other)
		if o[`totpserver_verifies_total{result="ok"}`] != 0 || o[`totpserver_pending_registrations`] != 0 {
			t.Errorf("the other server's metrics moved: %v", o)
		}
	})
}

func TestMetricsNotOnMainHandler(t *testing.T) {
	h := newHarness(t, storeSQLite(t), nil)
	w := httptest.NewRecorder()
	h.srv.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	if strings.Contains(w.Body.String(), "totpserver_verifies_total") {
		t.Fatalf("the main handler serves metrics")
	}
}

func TestReadyz(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) store.Store) {
		st := open(t)
		h := newHarness(t, st, nil)
		get := func(path string) (int, string) {
			w := httptest.NewRecorder()
			h.srv.Handler().ServeHTTP(w, httptest.NewRequest("GET", path, nil))
			return w.Code, w.Body.String()
		}
		if code, body := get("/readyz"); code != 200 || body != "ok\n" {
			t.Fatalf("/readyz = %d %q, want 200 ok", code, body)
		}
		st.Close()
		if code, body := get("/readyz"); code != 503 || !strings.Contains(body, "not ready") {
			t.Fatalf("/readyz with the store closed = %d %q, want 503", code, body)
		}
		if code, _ := get("/healthz"); code != 200 {
			t.Fatalf("/healthz with the store closed = %d, want 200", code)
		}
		if m := scrape(t, h); m["totpserver_store_scrape_errors"] != 1 {
			t.Errorf("store scrape errors = %v with the store closed, want 1", m["totpserver_store_scrape_errors"])
		}
	})
}
