// Package oidc signs people in to the console and the portal through the
// organisation's OpenID Provider: the authorization code flow with PKCE
// (S256), state and nonce, the ID token verified by discovery and JWKS
// (asymmetric algorithms only), and RP-initiated logout. It is the
// protocol only: who may do what with the identity it returns is the
// console's and the core's business, as RADIUS sits over core.Verify.
package oidc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/totpbox/totpbox/internal/wallclock"
)

// SigningAlgs are the ID token signature algorithms accepted: public-key
// ones only, so "none" and HMAC with the provider's public key as the
// secret are refused whatever the token's header says.
var SigningAlgs = []string{
	gooidc.RS256, gooidc.RS384, gooidc.RS512,
	gooidc.ES256, gooidc.ES384, gooidc.ES512,
	gooidc.PS256, gooidc.PS384, gooidc.PS512,
	gooidc.EdDSA,
}

// DefaultRetry is how long after a failed discovery the next is tried.
const DefaultRetry = 30 * time.Second

// discoveryTimeout bounds one discovery request.
const discoveryTimeout = 10 * time.Second

// Options are a Provider's collaborators; the zero value is usable.
type Options struct {
	// Logger receives discovery's successes and failures; nil means
	// slog.Default().
	Logger *slog.Logger
	// Now tells the time for ID token expiry; nil means time.Now.
	Now func() time.Time
	// HTTPClient talks to the provider; nil means a client with a 10 s
	// timeout.
	HTTPClient *http.Client
	// Retry is how long after a failed discovery the next is tried; zero
	// means DefaultRetry.
	Retry time.Duration
}

// Provider is the relying party of one OpenID Provider. Discovery runs in
// the background from New on, and again after Retry while it fails, so a
// provider that is down at start does not stop the server.
type Provider struct {
	cfg    Config
	secret string
	opts   Options

	mu      sync.Mutex
	ready   *discovered
	trying  bool
	lastTry time.Time
	lastErr error
}

// discovered is what discovery found.
type discovered struct {
	oauth      oauth2.Config
	verifier   *gooidc.IDTokenVerifier
	endSession string
}

// New returns the relying party of cfg (validated) and starts its first
// discovery in the background. It fails only when the client secret
// cannot be read.
func New(cfg Config, opts Options) (*Provider, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	secret, err := cfg.clientSecret()
	if err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: discoveryTimeout}
	}
	if opts.Retry <= 0 {
		opts.Retry = DefaultRetry
	}
	p := &Provider{cfg: cfg, secret: secret, opts: opts}
	p.kick()
	return p, nil
}

// Config returns the provider's configuration with its defaults.
func (p *Provider) Config() Config { return p.cfg }

// DisplayName is the name on the "Sign in with <name>" button.
func (p *Provider) DisplayName() string { return p.cfg.DisplayName }

// CallbackPath is the path of redirect_url, where the provider sends the
// browser back.
func (p *Provider) CallbackPath() string {
	u, _ := url.Parse(p.cfg.RedirectURL)
	return u.Path
}

// Available reports whether discovery has succeeded. While it has not,
// it starts another attempt in the background once Retry has passed
// since the last.
func (p *Provider) Available() bool {
	p.mu.Lock()
	ok := p.ready != nil
	p.mu.Unlock()
	if !ok {
		p.kick()
	}
	return ok
}

// Discover runs discovery now unless it has succeeded, and returns its
// error.
func (p *Provider) Discover(ctx context.Context) error {
	p.mu.Lock()
	if p.ready != nil {
		p.mu.Unlock()
		return nil
	}
	p.mu.Unlock()
	return p.discover(ctx)
}

// Run retries discovery every Retry until it succeeds or ctx ends; the
// server runs it beside its janitor, so single sign-on comes back by
// itself once the provider answers.
func (p *Provider) Run(ctx context.Context) {
	for {
		err := wallclock.Within(ctx, discoveryTimeout, p.Discover)
		if err == nil || wallclock.Sleep(ctx, p.opts.Retry) != nil {
			return
		}
	}
}

// kick starts a background discovery unless one runs, it succeeded, or
// the last failed less than Retry ago.
func (p *Provider) kick() {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if p.ready != nil || p.trying || (!p.lastTry.IsZero() && now.Sub(p.lastTry) < p.opts.Retry) {
		return
	}
	p.trying = true
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), discoveryTimeout)
		defer cancel()
		p.discover(ctx)
	}()
}

func (p *Provider) discover(ctx context.Context) error {
	ctx = gooidc.ClientContext(ctx, p.opts.HTTPClient)
	op, err := gooidc.NewProvider(ctx, p.cfg.Issuer)
	var d *discovered
	if err == nil {
		var meta struct {
			EndSession string `json:"end_session_endpoint"`
		}
		op.Claims(&meta)
		d = &discovered{
			oauth: oauth2.Config{
				ClientID:     p.cfg.ClientID,
				ClientSecret: p.secret,
				Endpoint:     op.Endpoint(),
				RedirectURL:  p.cfg.RedirectURL,
				Scopes:       p.cfg.Scopes,
			},
			verifier: op.Verifier(&gooidc.Config{
				ClientID:             p.cfg.ClientID,
				SupportedSigningAlgs: SigningAlgs,
				Now:                  p.opts.Now,
			}),
			endSession: meta.EndSession,
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.trying = false
	p.lastTry = time.Now()
	if err != nil {
		if p.lastErr == nil || p.lastErr.Error() != err.Error() {
			p.opts.Logger.Warn("oidc: discovery failed; single sign-on is unavailable, retrying", "issuer", p.cfg.Issuer, "every", p.opts.Retry, "err", err)
		}
		p.lastErr = err
		return fmt.Errorf("oidc discovery of %s: %w", p.cfg.Issuer, err)
	}
	if p.ready == nil {
		p.opts.Logger.Info("oidc: provider discovered", "issuer", p.cfg.Issuer, "end_session", d.endSession != "")
		p.ready = d
	}
	p.lastErr = nil
	return nil
}

// ErrUnavailable is returned while discovery has not succeeded.
var ErrUnavailable = errors.New("single sign-on is unavailable: the OpenID Provider has not answered discovery")

func (p *Provider) discovered() (*discovered, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ready == nil {
		return nil, ErrUnavailable
	}
	return p.ready, nil
}

// Request is one sign-in under way: the values the browser's return must
// match. They are random and single use.
type Request struct {
	State    string
	Nonce    string
	Verifier string // the PKCE code verifier
}

// NewRequest returns fresh random state, nonce and PKCE verifier.
func NewRequest() Request {
	return Request{State: oauth2.GenerateVerifier(), Nonce: oauth2.GenerateVerifier(), Verifier: oauth2.GenerateVerifier()}
}

// AuthCodeURL returns the provider's authorization URL for req, with the
// S256 challenge of its verifier.
func (p *Provider) AuthCodeURL(req Request) (string, error) {
	d, err := p.discovered()
	if err != nil {
		return "", err
	}
	return d.oauth.AuthCodeURL(req.State, oauth2.S256ChallengeOption(req.Verifier), gooidc.Nonce(req.Nonce)), nil
}

// Identity is who the provider vouched for.
type Identity struct {
	// Subject is the sub claim.
	Subject string
	// Username is the username_claim.
	Username string
	// Groups are the groups_claim's values; HasGroups is false when the
	// token has no such claim.
	Groups    []string
	HasGroups bool
	// IDToken is the raw ID token, the id_token_hint of logout.
	IDToken string
}

// Refused is a sign-in the provider's answer does not allow; Reason is
// one line for the audit log, without tokens or secrets.
type Refused struct{ Reason string }

func (e *Refused) Error() string { return "oidc: " + e.Reason }

func refused(format string, a ...any) error { return &Refused{Reason: fmt.Sprintf(format, a...)} }

// Exchange trades the code for tokens (sending req's PKCE verifier),
// verifies the ID token (signature by the provider's keys, issuer,
// audience, expiry, req's nonce) and returns its identity. A *Refused
// says why an answer was not good enough; other errors are failures to
// talk to the provider.
func (p *Provider) Exchange(ctx context.Context, code string, req Request) (Identity, error) {
	d, err := p.discovered()
	if err != nil {
		return Identity{}, err
	}
	ctx = gooidc.ClientContext(ctx, p.opts.HTTPClient)
	tok, err := d.oauth.Exchange(ctx, code, oauth2.VerifierOption(req.Verifier))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) {
			what := re.ErrorCode
			if what == "" {
				what = fmt.Sprintf("HTTP %d", re.Response.StatusCode)
			}
			return Identity{}, refused("the provider refused the code: %s", what)
		}
		return Identity{}, fmt.Errorf("oidc: code exchange: %w", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return Identity{}, refused("the provider's answer has no ID token")
	}
	return p.verify(ctx, d, raw, req.Nonce)
}

// Verify checks a raw ID token as Exchange does and returns its identity.
func (p *Provider) Verify(ctx context.Context, raw, nonce string) (Identity, error) {
	d, err := p.discovered()
	if err != nil {
		return Identity{}, err
	}
	return p.verify(gooidc.ClientContext(ctx, p.opts.HTTPClient), d, raw, nonce)
}

func (p *Provider) verify(ctx context.Context, d *discovered, raw, nonce string) (Identity, error) {
	idt, err := d.verifier.Verify(ctx, raw)
	if err != nil {
		var exp *gooidc.TokenExpiredError
		switch {
		case errors.As(err, &exp):
			return Identity{}, refused("the ID token expired at %s", exp.Expiry.UTC().Format(time.RFC3339))
		case strings.Contains(err.Error(), "expected audience"):
			return Identity{}, refused("the ID token is for another client, not %s", p.cfg.ClientID)
		}
		return Identity{}, refused("the ID token is not valid: %s", strings.TrimPrefix(err.Error(), "oidc: "))
	}
	if idt.Nonce != nonce {
		return Identity{}, refused("the ID token's nonce is not this sign-in's")
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return Identity{}, refused("the ID token's claims do not parse")
	}
	id := Identity{Subject: idt.Subject, IDToken: raw}
	id.Username, _ = claims[p.cfg.UsernameClaim].(string)
	if id.Username == "" {
		return Identity{}, refused("the ID token has no %s claim", p.cfg.UsernameClaim)
	}
	switch g := claims[p.cfg.GroupsClaim].(type) {
	case nil:
	case string:
		id.Groups, id.HasGroups = []string{g}, true
	case []any:
		id.HasGroups = true
		for _, v := range g {
			if s, ok := v.(string); ok {
				id.Groups = append(id.Groups, s)
			}
		}
	default:
		return Identity{}, refused("the ID token's %s claim is not a list of groups", p.cfg.GroupsClaim)
	}
	return id, nil
}

// LogoutURL returns the provider's end_session_endpoint with the ID token
// as id_token_hint and after as post_logout_redirect_uri, or "" when the
// provider offers no RP-initiated logout.
func (p *Provider) LogoutURL(idToken, after string) string {
	d, err := p.discovered()
	if err != nil || d.endSession == "" {
		return ""
	}
	u, err := url.Parse(d.endSession)
	if err != nil {
		return ""
	}
	q := u.Query()
	if idToken != "" {
		q.Set("id_token_hint", idToken)
	}
	q.Set("client_id", p.cfg.ClientID)
	if after != "" {
		q.Set("post_logout_redirect_uri", after)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// LogoutOrigin returns the scheme and host of the provider's
// end_session_endpoint, for the console's Content-Security-Policy, or ""
// without one.
func (p *Provider) LogoutOrigin() string {
	d, err := p.discovered()
	if err != nil || d.endSession == "" {
		return ""
	}
	u, err := url.Parse(d.endSession)
	if err != nil || u.Host == "" || strings.ContainsAny(u.Host, " ;'") {
		return ""
	}
	return u.Scheme + "://" + u.Host
}
