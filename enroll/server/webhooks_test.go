package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/totpbox/totpbox/enroll/store"
	"github.com/totpbox/totpbox/internal/testkit"
)

// TestWebhooksAPI manages an endpoint through /api/v1/webhooks and
// receives a device.registered event at it.
func TestWebhooksAPI(t *testing.T) {
	var mu sync.Mutex
	var got []map[string]any
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var m map[string]any
		json.Unmarshal(b, &m)
		m["webhook-id"] = r.Header.Get("webhook-id")
		mu.Lock()
		got = append(got, m)
		mu.Unlock()
	}))
	defer recv.Close()
	h := newHarness(t, storeSQLite(t), func(c *Config) {
		c.Webhooks = Webhooks{AllowPrivateTargets: true, Poll: 20 * time.Millisecond}
	})
	testkit.Run(t, func(ctx context.Context) error { h.srv.Run(ctx); return nil })

	for _, tc := range []struct {
		body map[string]any
		want string
	}{
		{map[string]any{"url": "https://u:s3cret@hooks.example.com/", "events": []string{"device.locked"}}, "must not hold credentials"},
		{map[string]any{"url": "ftp://hooks.example.com/", "events": []string{"device.locked"}}, `must be https, not "ftp"`},
		{map[string]any{"url": "https://hooks.example.com/" + strings.Repeat("x", 2100), "events": []string{"device.locked"}}, "over the limit of 2048"},
		{map[string]any{"url": "https://hooks.example.com/", "events": []string{}}, "events is empty"},
		{map[string]any{"url": "https://hooks.example.com/", "events": []string{"device.exploded"}}, `unknown event type "device.exploded"`},
	} {
		status, m := h.call("POST", "/api/v1/webhooks", tc.body)
		msg, _ := m["error"].(string)
		if status != 400 || !strings.Contains(msg, tc.want) || strings.Contains(msg, "s3cret") {
			t.Errorf("POST /api/v1/webhooks %v = %d %q, want 400 %q", tc.body, status, msg, tc.want)
		}
	}
	created := h.mustCall(201, "POST", "/api/v1/webhooks", map[string]any{"url": recv.URL + "/hook", "events": []string{"device.registered", "device.deleted"}})
	id, _ := created["id"].(string)
	secret, _ := created["secret"].(string)
	if !strings.HasPrefix(id, "wh_") || !strings.HasPrefix(secret, "whsec_") {
		t.Fatalf("created = %v, want an id wh_… and a secret whsec_…", created)
	}
	_, raw := h.callRaw("GET", "/api/v1/webhooks", nil, h.token)
	if strings.Contains(string(raw), secret) || strings.Contains(string(raw), "whsec_") || !strings.Contains(string(raw), id) {
		t.Errorf("GET /api/v1/webhooks = %s: want the endpoint, never its secret", raw)
	}
	_, raw = h.callRaw("GET", "/api/v1/webhooks/"+id, nil, h.token)
	if strings.Contains(string(raw), "whsec_") {
		t.Errorf("GET /api/v1/webhooks/%s shows the secret", id)
	}
	h.mustCall(404, "GET", "/api/v1/webhooks/wh_none", nil)

	_, devID := h.registered("alice", "Phone")
	h.mustCall(204, "DELETE", devPath("alice", devID), nil)
	if !waitFor(t, 10*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(got) >= 2 }) {
		t.Fatal("events not delivered")
	}
	// Deliveries run in parallel: they may arrive in any order.
	mu.Lock()
	types := map[string]bool{}
	for _, m := range got {
		types[m["type"].(string)] = true
		if data, _ := m["data"].(map[string]any); data["user"] != "alice" {
			t.Errorf("delivered data %v, want user alice", data)
		}
	}
	mu.Unlock()
	if len(got) != 2 || !types["device.registered"] || !types["device.deleted"] {
		t.Errorf("delivered %v, want device.registered and device.deleted", types)
	}

	u := h.mustCall(200, "PATCH", "/api/v1/webhooks/"+id, map[string]any{"events": []string{"*"}, "disabled": true})
	if u["disabled"] != true {
		t.Errorf("PATCH = %v, want disabled", u)
	}
	h.mustCall(400, "PATCH", "/api/v1/webhooks/"+id, map[string]any{"url": "http://u:p@x/"})
	h.mustCall(204, "DELETE", "/api/v1/webhooks/"+id, nil)
	h.mustCall(404, "DELETE", "/api/v1/webhooks/"+id, nil)
}

// TestWebhooksConsole adds an endpoint on the console's Webhooks page
// (its secret shown once), and redelivers a dead letter.
func TestWebhooksConsole(t *testing.T) {
	h := newHarness(t, storeSQLite(t), nil)
	h.admin()
	b := h.browser()
	b.signIn("root", adminPassword, nil, h.clock)
	_, _, page := b.get("/webhooks")
	status, _, page := b.post("/webhooks", url.Values{"url": {"http://hooks.example.com/"}, "events": {"device.locked"}}, csrf(t, page))
	if status != 400 || !strings.Contains(page, "must be https, not http") {
		t.Fatalf("adding an http endpoint = %d, want 400 naming https", status)
	}
	status, _, page = b.post("/webhooks", url.Values{"url": {"https://hooks.example.com/t"}, "events": {"device.locked", "user.disabled"}}, csrf(t, page))
	m := regexp.MustCompile(`whsec_[A-Za-z0-9+/=]+`).FindString(page)
	if status != 201 || m == "" {
		t.Fatalf("adding an endpoint = %d, want 201 with its whsec_ secret", status)
	}
	_, _, page = b.get("/webhooks")
	if strings.Contains(page, m) || !strings.Contains(page, "https://hooks.example.com/t") {
		t.Fatalf("the Webhooks page shows the secret again, or not the endpoint")
	}

	// A dead letter, and Redeliver.
	ctx := t.Context()
	eps, _ := h.st.Webhooks(ctx)
	now := h.clock.Now()
	if err := h.st.AuditWithEvent(ctx, store.AuditEvent{Time: now, Actor: "system", Action: "device.lock"},
		store.WebhookEvent{ID: "msg_dead", Type: "device.locked", Time: now, Data: "{}"}); err != nil {
		t.Fatal(err)
	}
	ds, err := h.st.ClaimDeliveries(ctx, "t", now, now.Add(time.Minute), 5)
	if err != nil || len(ds) != 1 || ds[0].EndpointID != eps[0].ID {
		t.Fatalf("ClaimDeliveries = %v, %v", ds, err)
	}
	must(t, h.st.FinishDelivery(ctx, ds[0].ID, "t", store.DeliveryDead, time.Time{}, "HTTP 500", now))
	_, _, page = b.get("/webhooks")
	action := fmt.Sprintf("/webhooks/deliveries/%d/redeliver", ds[0].ID)
	if !strings.Contains(page, "msg_dead") || !strings.Contains(page, action) {
		t.Fatalf("the Webhooks page lacks the dead letter and its Redeliver")
	}
	if status, path, _ := b.post(action, nil, csrf(t, page)); status != 200 || path != "/webhooks" {
		t.Fatalf("Redeliver = %d at %s", status, path)
	}
	again, err := h.st.ClaimDeliveries(ctx, "t2", h.clock.Now(), h.clock.Now().Add(time.Minute), 5)
	if err != nil || len(again) != 1 || again[0].Event.ID != "msg_dead" {
		t.Fatalf("after Redeliver, ClaimDeliveries = %v, %v; want msg_dead again", again, err)
	}
}
