package server

import (
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

func TestClientAddr(t *testing.T) {
	proxies, err := ParseTrustedProxies([]string{"10.0.0.0/8", "::1", " 192.168.1.5 "})
	if err != nil {
		t.Fatal(err)
	}
	a := netip.MustParseAddr
	tests := []struct {
		peer string
		xff  []string
		want string
	}{
		{"203.0.113.9", []string{"198.51.100.1"}, "203.0.113.9"},                  // untrusted peer: header ignored
		{"10.1.2.3", []string{"198.51.100.1"}, "198.51.100.1"},                    // one trusted hop
		{"10.1.2.3", []string{"6.6.6.6, 198.51.100.1, 10.9.9.9"}, "198.51.100.1"}, // client-written hops left of the client are ignored
		{"10.1.2.3", []string{"6.6.6.6", "198.51.100.1"}, "198.51.100.1"},         // several headers read as one list
		{"10.1.2.3", nil, "10.1.2.3"},                                             // no header: the proxy itself
		{"10.1.2.3", []string{"garbage, 10.9.9.9"}, "10.9.9.9"},                   // stop at a garbled hop
		{"::1", []string{"2001:db8::7"}, "2001:db8::7"},
		{"192.168.1.5", []string{"198.51.100.1"}, "198.51.100.1"},
		{"::ffff:10.1.2.3", []string{"198.51.100.1"}, "198.51.100.1"}, // v4-mapped peer
	}
	for _, tt := range tests {
		if got := clientAddr(proxies, a(tt.peer), tt.xff); got != a(tt.want) {
			t.Errorf("clientAddr(%s, %q) = %s, want %s", tt.peer, tt.xff, got, tt.want)
		}
	}
	if _, err := ParseTrustedProxies([]string{"10.0.0.0/8", "lb.example"}); err == nil || !strings.Contains(err.Error(), `"lb.example"`) {
		t.Errorf("ParseTrustedProxies(lb.example) = %v, want an error naming it", err)
	}
}

// TestTrustedProxiesAudit: the audit log records the client's address
// from X-Forwarded-For only when the request comes from a trusted proxy.
func TestTrustedProxiesAudit(t *testing.T) {
	proxies, _ := ParseTrustedProxies([]string{"10.0.0.0/8"})
	h := newHarness(t, storeSQLite(t), func(c *Config) { c.TrustedProxies = proxies })
	create := func(peer, user string) {
		r := httptest.NewRequest("POST", "/api/v1/users", strings.NewReader(`{"username":"`+user+`"}`))
		r.RemoteAddr = peer + ":4711"
		r.Header.Set("X-Forwarded-For", "198.51.100.1")
		r.Header.Set("Authorization", "Bearer "+h.token)
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.srv.Handler().ServeHTTP(w, r)
		if w.Code != 201 {
			t.Fatalf("create %s = %d %s", user, w.Code, w.Body)
		}
	}
	create("10.0.0.2", "viaproxy")
	create("203.0.113.9", "direct")
	evs, err := h.st.AuditEvents(t.Context(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, e := range evs {
		got[e.Target] = e.IP
	}
	if got["user:viaproxy"] != "198.51.100.1" || got["user:direct"] != "203.0.113.9" {
		t.Errorf("audit addresses = %v, want user:viaproxy from 198.51.100.1, user:direct from 203.0.113.9", got)
	}
}
