package api

import (
	"github.com/totpbox/totpbox/enroll/server/core"
	"github.com/totpbox/totpbox/enroll/server/events"
	"github.com/totpbox/totpbox/enroll/server/fleet"

	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/totpbox/totpbox/enroll/store"
)

// tokenPrefix marks totpserver API tokens so they are easy to spot in
// secret scanners.
const tokenPrefix = "tbx_"

// TokenStore is what creating and revoking tokens (totpserver token)
// needs. The SQLite and PostgreSQL stores satisfy it.
type TokenStore interface {
	CreateToken(ctx context.Context, t *store.Token) error
	RevokeToken(ctx context.Context, name string) error
	AuditWithEvent(ctx context.Context, e store.AuditEvent, ev store.WebhookEvent) error
	Atomic(ctx context.Context, fn func(ctx context.Context) error) error
}

// changeToken makes a token change and, in the same transaction, its
// audit row and the admin.changed webhook event; then it wakes the
// webhook deliverers of the servers sharing st.
func changeToken(ctx context.Context, st TokenStore, change func(ctx context.Context) error, e store.AuditEvent) error {
	ev, _ := events.WebhookEvent(e)
	if err := st.Atomic(ctx, func(ctx context.Context) error {
		if err := change(ctx); err != nil {
			return err
		}
		return st.AuditWithEvent(ctx, e, ev)
	}); err != nil {
		return err
	}
	// Without the wake, the deliverers find the event at their next poll.
	fleet.Send(ctx, st, core.NoticeWebhookEvent, "")
	return nil
}

// CreateToken makes a new admin API token named name and returns the
// bearer value, which is shown once: only its SHA-256 hash is stored.
func CreateToken(ctx context.Context, st TokenStore, name string) (string, error) {
	return CreateTokenFor(ctx, st, name, "", core.RoleAdmin)
}

// CreateTokenRole makes a new admin API token named name with role and
// returns the bearer value, which is shown once: only its SHA-256 hash is
// stored. The audit records the role.
func CreateTokenRole(ctx context.Context, st TokenStore, name string, role core.Role) (string, error) {
	return CreateTokenFor(ctx, st, name, "", role)
}

// TokenScope returns the stored scope of a --scope value: "" for "api"
// (the admin API) or empty, store.ScopeSCIM for "scim".
func TokenScope(v string) (string, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "", "api":
		return "", nil
	case store.ScopeSCIM:
		return store.ScopeSCIM, nil
	}
	return "", fmt.Errorf("token scope must be api or scim, not %q", v)
}

// CreateScopedToken makes a new token named name of scope (a TokenScope
// value: "" for the admin API, "scim" for /scim/v2 only) and returns the
// bearer value, which is shown once.
func CreateScopedToken(ctx context.Context, st TokenStore, name, scope string) (string, error) {
	return CreateTokenFor(ctx, st, name, scope, core.RoleAdmin)
}

// CreateTokenFor makes a new token named name of scope with role (which
// counts on the admin API only) and returns the bearer value.
func CreateTokenFor(ctx context.Context, st TokenStore, name, scope string, role core.Role) (string, error) {
	scope, err := TokenScope(scope)
	if err != nil {
		return "", err
	}
	if _, err := core.ParseRole(string(role)); err != nil {
		return "", err
	}
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 64 {
		return "", errors.New("token name must be 1 to 64 characters")
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._-", r)) {
			return "", fmt.Errorf("token name may hold only letters, digits and ._-, not %q", r)
		}
	}
	value := tokenPrefix + core.RandomToken()
	t := store.Token{Name: name, Hash: core.HashToken(value), Created: time.Now().UTC(), Scope: scope, Role: string(role)}
	err = changeToken(ctx, st, func(ctx context.Context) error { return st.CreateToken(ctx, &t) },
		store.AuditEvent{Time: t.Created, Actor: "cli", Action: "token.create", Target: "token:" + name, Detail: tokenDetail(scope, role)})
	if errors.Is(err, store.ErrConflict) {
		return "", fmt.Errorf("a token named %q already exists", name)
	}
	if err != nil {
		return "", fmt.Errorf("create token: %w", err)
	}
	return value, nil
}

// tokenDetail is the audit detail of a new token: its scope when it has
// one, else its role on the admin API.
func tokenDetail(scope string, role core.Role) string {
	if scope != "" {
		return "scope " + scope
	}
	return "role " + string(role)
}

// scopeName names a stored scope for people: "api" or "scim".
func scopeName(scope string) string {
	if scope == "" {
		return "api"
	}
	return scope
}

// ScopeName names a token's scope for people: "api" (the admin API) or
// "scim".
func ScopeName(t store.Token) string { return scopeName(t.Scope) }

// NoticeTokens is the fleet bus kind telling servers a token was revoked.
const NoticeTokens = "tokens"

// RevokeToken revokes the token named name; it is refused from then on:
// at once by the servers sharing a PostgreSQL store, which hear of it, and
// within their token TTL otherwise.
func RevokeToken(ctx context.Context, st TokenStore, name string) error {
	err := changeToken(ctx, st, func(ctx context.Context) error { return st.RevokeToken(ctx, name) },
		store.AuditEvent{Time: time.Now().UTC(), Actor: "cli", Action: "token.revoke", Target: "token:" + name})
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("no token named %q", name)
	}
	if err != nil {
		return fmt.Errorf("revoke token: %w", err)
	}
	if err := fleet.Send(ctx, st, NoticeTokens, name); err != nil {
		return fmt.Errorf("revoke token: revoked, but running servers were not told (they notice within their token TTL): %w", err)
	}
	return nil
}

// tokenCache remembers valid tokens by hash for a short while, so the
// verify path does not read the store for each call. A token revoked with
// `totpserver token revoke` is refused by running servers within ttl.
type tokenCache struct {
	ttl time.Duration
	mu  sync.Mutex
	m   map[string]cachedToken
}

type cachedToken struct {
	tok     store.Token
	checked time.Time
	touched time.Time
}

func newTokenCache(ttl time.Duration) *tokenCache {
	return &tokenCache{ttl: ttl, m: make(map[string]cachedToken)}
}

// token returns the valid token with the hash of value.
func (s *API) token(ctx context.Context, value string) (store.Token, error) {
	h := core.HashToken(value)
	now := s.clock.Now()
	c := s.tokens
	c.mu.Lock()
	ct, ok := c.m[string(h)]
	c.mu.Unlock()
	if ok && c.ttl > 0 && now.Sub(ct.checked) < c.ttl && now.Sub(ct.checked) >= 0 {
		return ct.tok, nil
	}
	t, err := s.store.TokenByHash(ctx, h)
	if errors.Is(err, store.ErrNotFound) || err == nil && t.Revoked {
		c.mu.Lock()
		delete(c.m, string(h))
		c.mu.Unlock()
		return store.Token{}, core.Fail(401, "invalid or revoked token")
	}
	if err != nil {
		return store.Token{}, err
	}
	// Record use at most once a minute per token: a write per verify
	// would halve throughput.
	if now.Sub(ct.touched) >= time.Minute || now.Sub(t.LastUsed) >= time.Minute {
		if err := s.store.TouchToken(ctx, t.ID, now.UTC()); err != nil {
			s.log.Error("touch token", "token", t.Name, "err", err)
		}
		ct.touched = now
	}
	if c.ttl > 0 {
		c.mu.Lock()
		c.m[string(h)] = cachedToken{tok: t, checked: now, touched: ct.touched}
		c.mu.Unlock()
	}
	return t, nil
}

// clear forgets every cached token.
func (c *tokenCache) clear() {
	c.mu.Lock()
	clear(c.m)
	c.mu.Unlock()
}

func (c *tokenCache) prune(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, t := range c.m {
		if now.Sub(t.checked) >= c.ttl {
			delete(c.m, k)
		}
	}
}
