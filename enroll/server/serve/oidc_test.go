package serve

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestUnreachableIssuerStarts: with the OpenID Provider down the server
// assembles and serves; the sign-in page says single sign-on is
// unavailable and still shows the local form.
func TestUnreachableIssuerStarts(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "oidc-secret")
	if err := os.WriteFile(secret, []byte("s3cret"), 0o600); err != nil {
		t.Fatal(err)
	}
	a, _ := assemble(t, func(c *Config) {
		c.OIDC.Issuer = "http://127.0.0.1:1"
		c.OIDC.ClientID = "totpbox"
		c.OIDC.ClientSecretFile = secret
		c.OIDC.RedirectURL = "http://127.0.0.1:8080/signin/oidc/callback"
		c.OIDC.DisplayName = "Corp IdP"
	})
	ctx, stop := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
	}()
	resp, err := http.Get(a.URL() + "/signin")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	page := string(body)
	if resp.StatusCode != 200 || !strings.Contains(page, "Single sign-on is unavailable right now: Corp IdP does not answer.") || !strings.Contains(page, `action="/signin"`) {
		t.Fatalf("sign-in page with the provider down: %d:\n%s", resp.StatusCode, page)
	}
}
