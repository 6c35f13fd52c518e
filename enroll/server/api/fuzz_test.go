package api

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/totpbox/totpbox/enroll/server/core"
)

// FuzzDecode runs every JSON request decoder of the admin and verify APIs
// over arbitrary bodies: each answers a value or a Failure (400, 413 or
// 415) with a one-line message, and never panics.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"username":"mia","display_name":"Mia","email":"mia@example.com","admin":false}`,
		`{"name":"phone","kind":"appliance","appliance":"0123456789abcdef"}`,
		`{"codes":["123456","654321"]}`,
		`{"username":"mia","code":"123456","ip":"192.0.2.1"}`,
		`{"username":`, `{"a":1}{"b":2}`, `[]`, `null`, "{\"username\":\"x\"}   \n",
	} {
		f.Add(byte(0), s)
		f.Add(byte(3), s)
	}
	f.Fuzz(func(t *testing.T, which byte, body string) {
		dsts := []func() any{
			func() any { return new(apiUserCreateRequest) },
			func() any { return new(apiDeviceCreateRequest) },
			func() any { return new(apiCodesRequest) },
			func() any { return new(apiVerifyRequest) },
		}
		r := httptest.NewRequest("POST", "/api/v1/x", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		err := decode(r, dsts[int(which)%len(dsts)]())
		if err == nil {
			return
		}
		var fail *core.Failure
		if !errors.As(err, &fail) {
			t.Fatalf("decode(%q) = %v, not a Failure", body, err)
		}
		switch fail.Status {
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
		default:
			t.Fatalf("decode(%q) = %d %v", body, fail.Status, err)
		}
		if strings.Contains(err.Error(), "\n") {
			t.Fatalf("decode(%q) error spans lines: %q", body, err)
		}
	})
}
