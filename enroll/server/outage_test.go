package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/totpbox/totpbox/enroll"
	"github.com/totpbox/totpbox/enroll/proto"
	"github.com/totpbox/totpbox/enroll/store"
	"github.com/totpbox/totpbox/enroll/store/storetest"
	"github.com/totpbox/totpbox/internal/testkit"
)

// TestOutageAnswers503: with PostgreSQL cut off mid-run (a TCP proxy
// between the server and the database drops every connection and refuses
// new ones), the verify API, the console, the appliance API and /readyz
// answer 503 with Retry-After instead of 500; once the database is back
// everything works again, and nothing written before is lost.
func TestOutageAnswers503(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	schema := storetest.CreateSchema(t, dsn)
	proxy := testkit.NewProxy(t, storetest.PostgresAddr(t, dsn))
	st, err := store.OpenPostgres(t.Context(), storetest.WithSearchPath(storetest.WithHostPort(dsn, proxy.Addr()), schema))
	if err != nil {
		t.Fatalf("OpenPostgres through the proxy: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	h := newHarness(t, st, nil)
	h.admin()
	k, _ := h.registered("alice", "Phone")
	kiosk := h.newAppliance()
	in, err := h.srv.Appliances().Pair(t.Context(), kiosk.pairingCode(), "Lobby")
	if err != nil {
		t.Fatal(err)
	}
	kiosk.id = in.ID
	b := h.browser()
	b.signIn("root", adminPassword, nil, h.clock)

	proxy.Cut()
	verify := map[string]any{"username": "alice", "code": enroll.Code(k, h.clock.Now())}
	retryAfter := func(what string, status int, hdr http.Header) {
		t.Helper()
		if status != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" {
			t.Errorf("%s during the outage = %d Retry-After %q, want 503 with Retry-After", what, status, hdr.Get("Retry-After"))
		}
	}
	req := func(method, path string, body any) *httptest.ResponseRecorder {
		var raw []byte
		if body != nil {
			raw, _ = json.Marshal(body)
		}
		r := httptest.NewRequest(method, path, bytes.NewReader(raw))
		r.Header.Set("Authorization", "Bearer "+h.token)
		w := httptest.NewRecorder()
		h.srv.Handler().ServeHTTP(w, r)
		return w
	}
	w := req("POST", "/api/v1/verify", verify)
	retryAfter("verify", w.Code, w.Header())
	w = req("GET", "/api/v1/users/alice", nil)
	retryAfter("GET user", w.Code, w.Header())
	w = req("GET", "/readyz", nil)
	if w.Code != http.StatusServiceUnavailable {
		t.Errorf("/readyz during the outage = %d, want 503", w.Code)
	}
	resp, err := b.c.Get(b.base + "/users")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	retryAfter("console /users", resp.StatusCode, resp.Header)
	q := proto.SyncQuery{After: 0}
	r := httptest.NewRequest("GET", proto.ChangesPath(kiosk.id)+"?"+q.Encode().Encode(), nil)
	proto.Sign(r, nil, kiosk.sign, h.clock.Now())
	w = httptest.NewRecorder()
	h.srv.Handler().ServeHTTP(w, r)
	retryAfter("appliance sync", w.Code, w.Header())
	var pe proto.Error
	if json.Unmarshal(w.Body.Bytes(), &pe); pe.Code != proto.CodeBusy {
		t.Errorf("appliance sync during the outage: code %q, want %q", pe.Code, proto.CodeBusy)
	}

	proxy.Restore()
	testkit.WaitFor(t, 30*time.Second, "ready again", func() bool { return req("GET", "/readyz", nil).Code == 200 })
	if w := req("POST", "/api/v1/verify", verify); w.Code != 200 {
		t.Fatalf("verify after the outage = %d %s, want 200", w.Code, w.Body)
	}
	if cs := kiosk.sync(nil); len(cs) != 0 {
		t.Errorf("sync after the outage = %v", cs)
	}
}
