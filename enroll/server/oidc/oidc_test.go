package oidc_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/totpbox/totpbox/enroll/server/oidc"
	"github.com/totpbox/totpbox/enroll/server/oidc/oidctest"
	"github.com/totpbox/totpbox/internal/testkit"
)

var (
	client = oidctest.Client{ID: "totpbox", Secret: "totpbox client secret", RedirectURL: "http://127.0.0.1:1/signin/oidc/callback"}
	other  = oidctest.Client{ID: "other-app", Secret: "other client secret", RedirectURL: "http://127.0.0.1:1/other/callback"}
)

// rig is a provider with three people in groups and one without a
// groups claim, and a relying party for client whose clock the test
// moves.
type rig struct {
	op  *oidctest.OP
	rp  *oidc.Provider
	now atomic.Int64 // seconds to add to the real time
}

func newRig(t *testing.T) *rig {
	t.Helper()
	r := &rig{op: oidctest.Start(t, oidctest.Options{
		Clients: []oidctest.Client{client, other},
		Accounts: map[string][]string{
			"alice": {"totp-admins", "staff"},
			"hank":  {"helpdesk-12"},
			"ada":   {"auditors"},
			"nog":   nil,
		},
	})}
	secret := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secret, []byte(client.Secret+"\n"), 0o600)
	rp, err := oidc.New(oidc.Config{
		Issuer:           r.op.Issuer,
		ClientID:         client.ID,
		ClientSecretFile: secret,
		RedirectURL:      client.RedirectURL,
		Scopes:           []string{"openid", "profile", "groups"},
	}, oidc.Options{Now: func() time.Time { return time.Now().Add(time.Duration(r.now.Load()) * time.Second) }})
	if err != nil {
		t.Fatal(err)
	}
	if err := rp.Discover(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.rp = rp
	return r
}

func browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 20 * time.Second}
}

// code signs account in and returns the code the provider sent back.
func (r *rig) code(t *testing.T, c *http.Client, req oidc.Request, account string) string {
	t.Helper()
	auth, err := r.rp.AuthCodeURL(req)
	if err != nil {
		t.Fatal(err)
	}
	back, err := r.op.SignIn(c, auth, account)
	if err != nil {
		t.Fatal(err)
	}
	if got := back.Query().Get("state"); got != req.State {
		t.Fatalf("state sent back = %q, want %q", got, req.State)
	}
	return back.Query().Get("code")
}

func TestExchangeAgainstOP(t *testing.T) {
	r := newRig(t)
	for _, tc := range []struct {
		account   string
		groups    []string
		hasGroups bool
	}{
		{"alice", []string{"totp-admins", "staff"}, true},
		{"hank", []string{"helpdesk-12"}, true},
		{"nog", nil, false},
	} {
		t.Run(tc.account, func(t *testing.T) {
			req := oidc.NewRequest()
			id, err := r.rp.Exchange(context.Background(), r.code(t, browser(), req, tc.account), req)
			if err != nil {
				t.Fatalf("Exchange: %v", err)
			}
			if id.Username != tc.account || id.HasGroups != tc.hasGroups || !slices.Equal(id.Groups, tc.groups) || id.IDToken == "" {
				t.Fatalf("Exchange = %+v, want username %s groups %v (claim present %v)", id, tc.account, tc.groups, tc.hasGroups)
			}
		})
	}
}

func TestExchangeRefusals(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	otherToken, err := r.op.IDToken(browser(), other, "alice")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		run  func(t *testing.T) error
		want string
	}{
		{"replayed code", func(t *testing.T) error {
			req := oidc.NewRequest()
			code := r.code(t, browser(), req, "alice")
			if _, err := r.rp.Exchange(ctx, code, req); err != nil {
				t.Fatalf("first exchange: %v", err)
			}
			_, err := r.rp.Exchange(ctx, code, req)
			return err
		}, "refused the code: invalid_grant"},
		{"wrong PKCE verifier", func(t *testing.T) error {
			req := oidc.NewRequest()
			code := r.code(t, browser(), req, "alice")
			req.Verifier = oidc.NewRequest().Verifier
			_, err := r.rp.Exchange(ctx, code, req)
			return err
		}, "refused the code: invalid_grant"},
		{"wrong nonce", func(t *testing.T) error {
			req := oidc.NewRequest()
			code := r.code(t, browser(), req, "alice")
			req.Nonce = "another"
			_, err := r.rp.Exchange(ctx, code, req)
			return err
		}, "nonce is not this sign-in's"},
		{"token for another client", func(t *testing.T) error {
			_, err := r.rp.Verify(ctx, otherToken, "oidctest-nonce")
			return err
		}, "for another client"},
		{"expired token", func(t *testing.T) error {
			req := oidc.NewRequest()
			code := r.code(t, browser(), req, "alice")
			r.now.Store(2 * 3600)
			defer r.now.Store(0)
			_, err := r.rp.Exchange(ctx, code, req)
			return err
		}, "ID token expired"},
		{"HS256 with a key of its own", func(t *testing.T) error {
			parts := strings.Split(otherToken, ".")
			head := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
			mac := hmac.New(sha256.New, []byte(client.Secret))
			mac.Write([]byte(head + "." + parts[1]))
			_, err := r.rp.Verify(ctx, head+"."+parts[1]+"."+base64.RawURLEncoding.EncodeToString(mac.Sum(nil)), "oidctest-nonce")
			return err
		}, `unexpected signature algorithm "HS256"`},
		{"alg none", func(t *testing.T) error {
			parts := strings.Split(otherToken, ".")
			_, err := r.rp.Verify(ctx, "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0."+parts[1]+".", "oidctest-nonce")
			return err
		}, "not valid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.run(t)
			var ref *oidc.Refused
			if !errors.As(err, &ref) || !strings.Contains(ref.Reason, tc.want) {
				t.Fatalf("error = %v, want a refusal saying %q", err, tc.want)
			}
		})
	}
}

func TestRoleFor(t *testing.T) {
	c := oidc.Config{RoleMap: []oidc.RoleMapping{
		{Group: "totp-admins", Role: "admin"},
		{Group: "helpdesk-12", Role: "helpdesk@store-12"},
		{Group: "helpdesk-13", Role: "helpdesk@store-13"},
		{Group: "helpdesk", Role: "helpdesk"},
		{Group: "auditors", Role: "auditor"},
	}}
	for _, tc := range []struct {
		groups []string
		want   oidc.Grant
		ok     bool
	}{
		{[]string{"staff"}, oidc.Grant{}, false},
		{nil, oidc.Grant{}, false},
		{[]string{"auditors", "totp-admins"}, oidc.Grant{Role: "admin"}, true},
		{[]string{"helpdesk-13", "helpdesk-12", "auditors"}, oidc.Grant{Role: "helpdesk", Sites: []string{"store-12", "store-13"}}, true},
		{[]string{"helpdesk-12", "helpdesk"}, oidc.Grant{Role: "helpdesk"}, true},
		{[]string{"auditors"}, oidc.Grant{Role: "auditor"}, true},
		{[]string{"Totp-Admins"}, oidc.Grant{}, false},
	} {
		g, ok := c.RoleFor(tc.groups)
		if ok != tc.ok || g.Role != tc.want.Role || !slices.Equal(g.Sites, tc.want.Sites) {
			t.Errorf("RoleFor(%v) = %+v, %v, want %+v, %v", tc.groups, g, ok, tc.want, tc.ok)
		}
	}
}

func TestValidate(t *testing.T) {
	good := oidc.Config{Issuer: "https://idp.example.com/realms/x", ClientID: "totpbox", ClientSecretFile: "/etc/totpbox/oidc-secret",
		RedirectURL: "https://totp.example.com/signin/oidc/callback", AllowLocalSignin: true}
	for _, tc := range []struct {
		name string
		mod  func(*oidc.Config)
		want string // "" means valid
	}{
		{"good", func(*oidc.Config) {}, ""},
		{"off", func(c *oidc.Config) { *c = oidc.Config{} }, ""},
		{"keys without issuer", func(c *oidc.Config) { c.Issuer = "" }, "oidc.issuer: required when the other oidc keys are set"},
		{"http issuer", func(c *oidc.Config) { c.Issuer = "http://idp.example.com" }, "oidc.issuer: \"http://idp.example.com\" is not an https:// URL (http:// only for loopback)"},
		{"loopback http issuer", func(c *oidc.Config) { c.Issuer = "http://127.0.0.1:9000" }, ""},
		{"no client id", func(c *oidc.Config) { c.ClientID = "" }, "oidc.client_id: required"},
		{"no secret", func(c *oidc.Config) { c.ClientSecretFile = "" }, "oidc.client_secret_file: give one of client_secret_file and client_secret_credential"},
		{"two secrets", func(c *oidc.Config) { c.ClientSecretCredential = "oidc" }, "oidc.client_secret_file: give one of client_secret_file and client_secret_credential"},
		{"credential path", func(c *oidc.Config) { c.ClientSecretFile, c.ClientSecretCredential = "", "/run/x" }, "oidc.client_secret_credential: \"/run/x\" is a credential name, not a path"},
		{"relative redirect", func(c *oidc.Config) { c.RedirectURL = "/signin/oidc/callback" }, "oidc.redirect_url: \"/signin/oidc/callback\" is not an absolute http(s) URL with a path, e.g. https://totp.example.com/signin/oidc/callback"},
		{"redirect outside /signin/", func(c *oidc.Config) { c.RedirectURL = "https://totp.example.com/users" }, "oidc.redirect_url: the path \"/users\" must be under /signin/ and not /signin/oidc itself, e.g. /signin/oidc/callback"},
		{"bad role", func(c *oidc.Config) { c.RoleMap = []oidc.RoleMapping{{Group: "g", Role: "root"}} }, "oidc.role_map[0].role: \"root\" is not admin, helpdesk or auditor (optionally @site)"},
		{"bad site", func(c *oidc.Config) { c.RoleMap = []oidc.RoleMapping{{Group: "g", Role: "helpdesk@"}} }, "oidc.role_map[0].role: \"helpdesk@\": the site \"\" is not a site name (letters, digits, . _ -)"},
		{"no group", func(c *oidc.Config) { c.RoleMap = []oidc.RoleMapping{{Role: "admin"}} }, "oidc.role_map[0].group: required"},
		{"bad cidr", func(c *oidc.Config) { c.LocalSigninFrom = []string{"10.0.0.0/33"} }, "oidc.local_signin_from: \"10.0.0.0/33\" is not an address or CIDR range"},
		{"scope with space", func(c *oidc.Config) { c.Scopes = []string{"openid profile"} }, "oidc.scopes: \"openid profile\" is not a scope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := good
			tc.mod(&c)
			err := c.Validate()
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Fatalf("Validate() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestUnreachableIssuer(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secret, []byte("s"), 0o600)
	rp, err := oidc.New(oidc.Config{Issuer: "http://127.0.0.1:1", ClientID: "c", ClientSecretFile: secret,
		RedirectURL: "http://127.0.0.1:2/signin/oidc/callback"}, oidc.Options{})
	if err != nil {
		t.Fatalf("New with an unreachable issuer: %v, want a provider that retries", err)
	}
	if err := rp.Discover(context.Background()); err == nil {
		t.Fatal("Discover of an unreachable issuer succeeded")
	}
	if rp.Available() {
		t.Fatal("Available() with an unreachable issuer")
	}
	if _, err := rp.AuthCodeURL(oidc.NewRequest()); !errors.Is(err, oidc.ErrUnavailable) {
		t.Fatalf("AuthCodeURL = %v, want ErrUnavailable", err)
	}
}

// TestRunRetriesDiscovery: a provider that does not answer at first is
// discovered by Run once it does.
func TestRunRetriesDiscovery(t *testing.T) {
	var up atomic.Bool
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !up.Load() || r.URL.Path != "/.well-known/openid-configuration" {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"issuer":%q,"authorization_endpoint":"%[1]s/auth","token_endpoint":"%[1]s/token","jwks_uri":"%[1]s/jwks","end_session_endpoint":"%[1]s/session/end"}`, srv.URL)
	}))
	defer srv.Close()
	secret := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secret, []byte("s"), 0o600)
	rp, err := oidc.New(oidc.Config{Issuer: srv.URL, ClientID: "c", ClientSecretFile: secret,
		RedirectURL: "http://127.0.0.1:2/signin/oidc/callback"}, oidc.Options{Retry: 20 * time.Millisecond, Logger: testkit.Quiet()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { rp.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	if err := rp.Discover(ctx); err == nil {
		t.Fatal("Discover succeeded while the provider is down")
	}
	up.Store(true)
	testkit.WaitFor(t, 10*time.Second, "discovery after the provider came up", rp.Available)
	if got := rp.LogoutOrigin(); got != srv.URL {
		t.Fatalf("LogoutOrigin() = %q, want %q", got, srv.URL)
	}
}
