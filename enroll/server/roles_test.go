package server

import (
	"context"
	"strings"
	"testing"

	"github.com/totpbox/totpbox/enroll/server/api"
	"github.com/totpbox/totpbox/enroll/server/core"
)

// roleToken makes an API token with role and returns its bearer value.
func (h *harness) roleToken(name string, role core.Role) string {
	h.t.Helper()
	tok, err := api.CreateTokenRole(context.Background(), h.st, name, role)
	if err != nil {
		h.t.Fatalf("CreateTokenRole(%s): %v", role, err)
	}
	return tok
}

// TestVerifyTokenOnlyVerifies: an application's token made for verifying
// codes cannot register an MFA device for the admin (and so read its
// secret), list users or devices, or change anything; it verifies.
func TestVerifyTokenOnlyVerifies(t *testing.T) {
	h := newHarness(t, storeSQLite(t), nil)
	if _, err := h.srv.Core().CreateUser(context.Background(), core.System, core.NewUser{Username: "admin", Admin: true}); err != nil {
		t.Fatal(err)
	}
	app := h.roleToken("app", core.RoleVerify)

	for _, tc := range []struct {
		method, path string
		body         any
	}{
		{"POST", "/api/v1/users/admin/mfa-devices", map[string]any{"name": "Mine now"}},
		{"GET", "/api/v1/users/admin/mfa-devices", nil},
		{"GET", "/api/v1/users/admin", nil},
		{"POST", "/api/v1/users", map[string]any{"username": "mallory"}},
		{"GET", "/api/v1/audit", nil},
		{"GET", "/api/v1/appliances", nil},
		{"GET", "/api/v1/webhooks", nil},
	} {
		status, raw := h.callRaw(tc.method, tc.path, tc.body, app)
		if status != 403 || !strings.Contains(string(raw), "role; you have the verify role") {
			t.Errorf("%s %s with a verify token = %d %s, want 403 naming the role", tc.method, tc.path, status, raw)
		}
		if strings.Contains(string(raw), "otpauth") {
			t.Errorf("%s %s with a verify token leaked a secret: %s", tc.method, tc.path, raw)
		}
	}
	if _, devs := h.call("GET", "/api/v1/users/admin/mfa-devices", nil); len(devs["mfa_devices"].([]any)) != 0 {
		t.Errorf("the admin has MFA devices after the verify token's tries: %v", devs)
	}

	// It verifies: a code of a user without a device is refused (401,
	// ok false), not a 403.
	status, raw := h.callRaw("POST", "/api/v1/verify", map[string]any{"username": "admin", "code": "123456"}, app)
	if status != 401 || !strings.Contains(string(raw), `"ok":false`) {
		t.Errorf("verify with a verify token = %d %s, want 401 ok false", status, raw)
	}
}
