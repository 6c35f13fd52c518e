package server

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

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
	mu.Lock()
	types := []string{got[0]["type"].(string), got[1]["type"].(string)}
	data, _ := got[0]["data"].(map[string]any)
	mu.Unlock()
	if types[0] != "device.registered" || types[1] != "device.deleted" || data["user"] != "alice" {
		t.Errorf("delivered %v, data %v; want device.registered then device.deleted for alice", types, data)
	}

	u := h.mustCall(200, "PATCH", "/api/v1/webhooks/"+id, map[string]any{"events": []string{"*"}, "disabled": true})
	if u["disabled"] != true {
		t.Errorf("PATCH = %v, want disabled", u)
	}
	h.mustCall(400, "PATCH", "/api/v1/webhooks/"+id, map[string]any{"url": "http://u:p@x/"})
	h.mustCall(204, "DELETE", "/api/v1/webhooks/"+id, nil)
	h.mustCall(404, "DELETE", "/api/v1/webhooks/"+id, nil)
}
