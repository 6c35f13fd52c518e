// Package oidctest runs a real OpenID Provider for tests: node's
// oidc-provider (npm, from .ci/node) with a test's clients and accounts,
// behind a small proxy of the test's own that can swap the ID token of
// the token endpoint's next answer (a token substituted on the way). It
// skips the test without node or oidc-provider, and fails it in CI.
package oidctest

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/totpbox/totpbox/internal/fsx"
	"github.com/totpbox/totpbox/internal/testkit"
)

//go:embed op.mjs
var script []byte

// Client is a client registered at the provider.
type Client struct {
	ID     string
	Secret string
	// RedirectURL and PostLogoutURL are its registered addresses.
	RedirectURL   string
	PostLogoutURL string
}

// Options configure the provider.
type Options struct {
	// Clients registered; the first is the one under test.
	Clients []Client
	// Accounts are the provider's people by username, with their groups;
	// a nil slice gives a person no groups claim at all.
	Accounts map[string][]string
	// IDTokenTTL is the ID tokens' lifetime (default one hour).
	IDTokenTTL time.Duration
}

// OP is a running provider.
type OP struct {
	// Issuer is the provider's issuer URL (the proxy's address).
	Issuer string

	mu       sync.Mutex
	swap     string // an ID token to put in the next token answer
	accounts map[string][]string
	file     string // the accounts as the provider reads them
}

// Start runs the provider until the test ends.
func Start(t testing.TB, opts Options) *OP {
	t.Helper()
	modules := testkit.NodeModules(t, "oidc-provider")
	op := &OP{}
	var target *url.URL
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = r.In.Host // the provider builds its URLs from the issuer's host
		},
		ModifyResponse: op.modify,
	}
	proxy := httptest.NewServer(rp)
	t.Cleanup(proxy.Close)
	op.Issuer = proxy.URL

	type client struct {
		ID       string   `json:"client_id"`
		Secret   string   `json:"client_secret"`
		Redirect []string `json:"redirect_uris"`
		Logout   []string `json:"post_logout_redirect_uris,omitempty"`
	}
	var clients []client
	for _, c := range opts.Clients {
		cl := client{ID: c.ID, Secret: c.Secret, Redirect: []string{c.RedirectURL}}
		if c.PostLogoutURL != "" {
			cl.Logout = []string{c.PostLogoutURL}
		}
		clients = append(clients, cl)
	}
	dir := t.TempDir()
	op.file = filepath.Join(dir, "accounts.json")
	op.accounts = maps.Clone(opts.Accounts)
	if err := op.writeAccounts(); err != nil {
		t.Fatal(err)
	}
	cfg, err := json.Marshal(map[string]any{
		"modules":      modules,
		"issuer":       op.Issuer,
		"clients":      clients,
		"accountsFile": op.file,
		"idTokenTTL":   int(opts.IDTokenTTL / time.Second),
	})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "op.mjs")
	if err := os.WriteFile(path, script, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("node", path)
	cmd.Env = append(os.Environ(), "OP_CONFIG="+string(cfg), "NODE_ENV=test")
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start oidc-provider: %v", err)
	}
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("oidc-provider's stderr:\n%s", stderr.String())
		}
	})
	lines := bufio.NewScanner(stdout)
	port := make(chan string, 1)
	go func() {
		for lines.Scan() {
			if p, ok := strings.CutPrefix(lines.Text(), "listening "); ok {
				port <- p
			}
		}
		close(port)
	}()
	select {
	case p, ok := <-port:
		if !ok {
			cmd.Wait()
			t.Fatalf("oidc-provider exited before listening:\n%s", stderr.String())
		}
		target, _ = url.Parse("http://127.0.0.1:" + p)
	case <-time.After(30 * time.Second):
		t.Fatalf("oidc-provider did not listen within 30 s:\n%s", stderr.String())
	}
	return op
}

// SetGroups changes an account's groups (nil: no groups claim) from its
// next sign-in on.
func (op *OP) SetGroups(account string, groups []string) error {
	op.mu.Lock()
	defer op.mu.Unlock()
	op.accounts[account] = groups
	return op.writeAccounts()
}

func (op *OP) writeAccounts() error {
	b, err := json.Marshal(op.accounts)
	if err != nil {
		return err
	}
	return fsx.WriteAtomic(op.file, b, fsx.Options{})
}

// SwapNextIDToken makes the token endpoint's next answer carry raw as its
// ID token instead of the one the provider issued.
func (op *OP) SwapNextIDToken(raw string) {
	op.mu.Lock()
	op.swap = raw
	op.mu.Unlock()
}

func (op *OP) modify(resp *http.Response) error {
	if resp.Request.URL.Path != "/token" || resp.StatusCode != http.StatusOK {
		return nil
	}
	op.mu.Lock()
	raw := op.swap
	op.swap = ""
	op.mu.Unlock()
	if raw == "" {
		return nil
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		return err
	}
	m["id_token"] = raw
	body, _ = json.Marshal(m)
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Set("Content-Length", fmt.Sprint(len(body)))
	return nil
}

var actionRE = regexp.MustCompile(`<form[^>]*action="([^"]+)"`)

// SignIn drives a browser-like client through the provider: it GETs
// start (a relying party's sign-in URL, or the provider's authorization
// URL), follows redirects to the provider's login form, signs in as
// account, and returns the URL the provider sends the browser back to,
// without visiting it. c must keep cookies; its CheckRedirect is
// replaced for the duration.
func (op *OP) SignIn(c *http.Client, start, account string) (*url.URL, error) {
	issuer, _ := url.Parse(op.Issuer)
	saved := c.CheckRedirect
	defer func() { c.CheckRedirect = saved }()
	var back *url.URL
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if req.URL.Host != issuer.Host {
			back = req.URL
			return http.ErrUseLastResponse
		}
		return nil
	}
	resp, err := c.Get(start)
	if err != nil {
		return nil, err
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if back != nil {
		return nil, fmt.Errorf("sent back to %s before signing in", back)
	}
	m := actionRE.FindSubmatch(page)
	if m == nil {
		return nil, fmt.Errorf("no login form at %s (%d): %.300s", resp.Request.URL, resp.StatusCode, page)
	}
	action, err := resp.Request.URL.Parse(string(m[1]))
	if err != nil {
		return nil, err
	}
	resp, err = c.PostForm(action.String(), url.Values{"prompt": {"login"}, "login": {account}, "password": {"any"}})
	if err != nil {
		return nil, err
	}
	page, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if back == nil {
		return nil, fmt.Errorf("the provider did not send the browser back (%d at %s): %.300s", resp.StatusCode, resp.Request.URL, page)
	}
	return back, nil
}

// IDToken signs account in as client (through SignIn and a code
// exchange of its own) and returns the ID token the provider issued,
// for tests that hand a relying party a token meant for another.
func (op *OP) IDToken(c *http.Client, client Client, account string) (string, error) {
	verifier := "oidctest-verifier-0123456789-0123456789-0123456789"
	auth := op.Issuer + "/auth?" + url.Values{
		"client_id":             {client.ID},
		"response_type":         {"code"},
		"scope":                 {"openid profile groups"},
		"redirect_uri":          {client.RedirectURL},
		"state":                 {"oidctest-state"},
		"nonce":                 {"oidctest-nonce"},
		"code_challenge":        {s256(verifier)},
		"code_challenge_method": {"S256"},
	}.Encode()
	back, err := op.SignIn(c, auth, account)
	if err != nil {
		return "", err
	}
	code := back.Query().Get("code")
	if code == "" {
		return "", fmt.Errorf("no code in %s", back)
	}
	req, _ := http.NewRequest("POST", op.Issuer+"/token", strings.NewReader(url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"redirect_uri":  {client.RedirectURL},
		"code_verifier": {verifier},
	}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(client.ID, client.Secret)
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var out struct {
		IDToken string `json:"id_token"`
		Error   string `json:"error"`
	}
	json.NewDecoder(resp.Body).Decode(&out)
	if out.IDToken == "" {
		return "", errors.New("token endpoint: no id_token: " + out.Error)
	}
	return out.IDToken, nil
}

// s256 is the PKCE S256 challenge of verifier.
func s256(verifier string) string {
	h := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(h[:])
}
