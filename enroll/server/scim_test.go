package server

import (
	"encoding/json"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/totpbox/totpbox/enroll/server/api"
	"github.com/totpbox/totpbox/enroll/server/scim"
)

// TestSCIMTokenScopes: a scim token reaches only /scim/v2, an admin API
// token only /api/v1, each refused at the other with 403.
func TestSCIMTokenScopes(t *testing.T) {
	h := newHarness(t, storeSQLite(t), nil)
	scimTok, err := api.CreateScopedToken(t.Context(), h.st, "entra", "scim")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, method, path, token string
		want                      int
	}{
		{"scim token at /scim/v2", "GET", "/scim/v2/Users", scimTok, 200},
		{"admin token at /scim/v2", "GET", "/scim/v2/Users", h.token, 403},
		{"admin token at a SCIM user", "GET", "/scim/v2/Users/x", h.token, 403},
		{"scim token at /api/v1/users", "GET", "/api/v1/users/alice", scimTok, 403},
		{"scim token at /api/v1/verify", "POST", "/api/v1/verify", scimTok, 403},
		{"scim token at /api/v1/audit", "GET", "/api/v1/audit", scimTok, 403},
		{"admin token at /api/v1", "GET", "/api/v1/users/nobody", h.token, 404},
	} {
		t.Run(c.name, func(t *testing.T) {
			var body any
			if c.method == "POST" {
				body = map[string]any{"username": "alice", "code": "123456"}
			}
			if status, raw := h.callRaw(c.method, c.path, body, c.token); status != c.want {
				t.Errorf("%s %s = %d %s, want %d", c.method, c.path, status, raw, c.want)
			}
		})
	}
}

// TestSCIMBodyLimit: a body over 64 KiB, of known length or chunked, is
// answered 413 with SCIM error JSON before any handler reads it.
func TestSCIMBodyLimit(t *testing.T) {
	h := newHarness(t, storeSQLite(t), nil)
	tok, err := api.CreateScopedToken(t.Context(), h.st, "okta", "scim")
	if err != nil {
		t.Fatal(err)
	}
	big := `{"userName":"x","displayName":"` + strings.Repeat("a", MaxBody) + `"}`
	for _, chunked := range []bool{false, true} {
		var r io.Reader = strings.NewReader(big)
		if chunked {
			r = io.MultiReader(r) // no length: sent chunked
		}
		req := httptest.NewRequest("POST", "/scim/v2/Users", r)
		if chunked {
			req.ContentLength = -1
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/scim+json")
		rec := httptest.NewRecorder()
		h.srv.Handler().ServeHTTP(rec, req)
		var m map[string]any
		json.Unmarshal(rec.Body.Bytes(), &m)
		if rec.Code != 413 || m["status"] != "413" || m["schemas"] == nil || rec.Header().Get("Content-Type") != "application/scim+json" {
			t.Errorf("chunked=%v: %d %s %q, want 413 SCIM error JSON", chunked, rec.Code, rec.Header().Get("Content-Type"), rec.Body.String())
		}
		if s, ok := m["schemas"].([]any); !ok || len(s) != 1 || s[0] != scim.ErrorSchema {
			t.Errorf("chunked=%v: schemas = %v", chunked, m["schemas"])
		}
	}
}
