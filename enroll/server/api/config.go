package api

import (
	"context"
	"errors"
	"github.com/totpbox/totpbox/enroll/server/fleet"
	"log/slog"
	"net/http"
	"time"

	"github.com/totpbox/totpbox/enroll/server/core"
	"github.com/totpbox/totpbox/enroll/store"
	"github.com/totpbox/totpbox/internal/wallclock"
)

// Store is what the JSON APIs read themselves: users and their MFA
// devices to show, and the bearer tokens that authenticate callers. Every
// change goes through the core. The SQLite and PostgreSQL stores satisfy
// it.
type Store interface {
	UserByName(ctx context.Context, username string) (store.User, error)
	DevicesByUser(ctx context.Context, userID int64) ([]store.Device, error)
	TokenByHash(ctx context.Context, hash []byte) (store.Token, error)
	TouchToken(ctx context.Context, id int64, at time.Time) error
	AuditAfter(ctx context.Context, q store.AuditQuery) ([]store.AuditEvent, error)
}

// Config configures an API. Core and Store are required.
type Config struct {
	// Core does the operations the requests ask for.
	Core *core.Core
	// Store is read for the answers and holds the tokens.
	Store Store
	// Clock tells the time; nil means the real clock.
	Clock core.Clock
	// Logger receives the API's logs; nil means slog.Default().
	Logger *slog.Logger
	// TokenTTL is how long a checked token is trusted before the store is
	// read again; zero or negative reads the store every time.
	TokenTTL time.Duration
	// Bus carries "token revoked" from `totpserver token revoke` (or any
	// replica) so every replica drops its cached tokens at once; nil
	// means an in-process bus.
	Bus *fleet.Bus
}

// API serves the admin JSON API and the verify API under /api/v1/, for
// callers holding a bearer token.
type API struct {
	core   *core.Core
	store  Store
	clock  core.Clock
	log    *slog.Logger
	tokens *tokenCache
}

// New returns an API for cfg, or an error naming what is missing.
func New(cfg Config) (*API, error) {
	switch {
	case cfg.Core == nil:
		return nil, errors.New("api: Config.Core is required")
	case cfg.Store == nil:
		return nil, errors.New("api: Config.Store is required")
	}
	if cfg.Clock == nil {
		cfg.Clock = wallclock.Clock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	a := &API{core: cfg.Core, store: cfg.Store, clock: cfg.Clock, log: cfg.Logger, tokens: newTokenCache(cfg.TokenTTL)}
	if cfg.Bus == nil {
		cfg.Bus = fleet.New(nil, cfg.Logger)
	}
	cfg.Bus.Handle(NoticeTokens, func(string) { a.tokens.clear() })
	cfg.Bus.OnResync(a.tokens.clear)
	return a, nil
}

// Mux is where Register adds routes; *http.ServeMux is one.
type Mux interface {
	HandleFunc(pattern string, handler func(http.ResponseWriter, *http.Request))
}

// Register adds the API's routes to mux, and a JSON 404 for any other
// path under /api/.
func (s *API) Register(mux Mux) {
	mux.HandleFunc("POST /api/v1/users", s.api(core.OpManageUsers, s.apiUserCreate))
	mux.HandleFunc("GET /api/v1/users/{username}", s.api(core.OpReadUsers, s.apiUserGet))
	mux.HandleFunc("POST /api/v1/users/{username}/mfa-devices", s.api(core.OpManageDevices, s.apiDeviceCreate))
	mux.HandleFunc("GET /api/v1/users/{username}/mfa-devices", s.api(core.OpReadUsers, s.apiDeviceList))
	mux.HandleFunc("DELETE /api/v1/users/{username}/mfa-devices/{id}", s.api(core.OpManageDevices, s.apiDeviceDelete))
	mux.HandleFunc("POST /api/v1/users/{username}/mfa-devices/{id}/confirm", s.api(core.OpManageDevices, s.apiDeviceConfirm))
	mux.HandleFunc("POST /api/v1/users/{username}/mfa-devices/{id}/send", s.api(core.OpManageDevices, s.apiDeviceSend))
	mux.HandleFunc("POST /api/v1/users/{username}/mfa-devices/{id}/resync", s.api(core.OpManageDevices, s.apiDeviceResync))
	mux.HandleFunc("GET /api/v1/appliances", s.api(core.OpReadAppliances, s.apiApplianceList))
	mux.HandleFunc("POST /api/v1/appliances", s.api(core.OpAppliances, s.apiAppliancePair))
	mux.HandleFunc("GET /api/v1/appliances/{appliance}", s.api(core.OpReadAppliances, s.apiApplianceGet))
	mux.HandleFunc("PATCH /api/v1/appliances/{appliance}", s.api(core.OpAppliances, s.apiApplianceRename))
	mux.HandleFunc("DELETE /api/v1/appliances/{appliance}", s.api(core.OpAppliances, s.apiApplianceUnpair))
	mux.HandleFunc("POST /api/v1/appliances/{appliance}/replace", s.api(core.OpAppliances, s.apiApplianceReplace))
	mux.HandleFunc("GET /api/v1/appliances/{appliance}/replacements", s.api(core.OpReadAppliances, s.apiApplianceReplacements))
	mux.HandleFunc("GET /api/v1/hardware-tokens", s.api(core.OpReadHardwareTokens, s.apiHardwareTokenList))
	mux.HandleFunc("POST /api/v1/hardware-tokens/{serial}/assign", s.api(core.OpManageDevices, s.apiHardwareTokenAssign))
	mux.HandleFunc("POST /api/v1/verify", s.api(core.OpVerify, s.apiVerify))
	mux.HandleFunc("GET /api/v1/audit", s.apiFor(auditReader, s.apiAudit))
	mux.HandleFunc("POST /api/v1/webhooks", s.api(core.OpWebhooks, s.apiWebhookCreate))
	mux.HandleFunc("GET /api/v1/webhooks", s.api(core.OpReadWebhooks, s.apiWebhookList))
	mux.HandleFunc("GET /api/v1/webhooks/{id}", s.api(core.OpReadWebhooks, s.apiWebhookGet))
	mux.HandleFunc("PATCH /api/v1/webhooks/{id}", s.api(core.OpWebhooks, s.apiWebhookUpdate))
	mux.HandleFunc("DELETE /api/v1/webhooks/{id}", s.api(core.OpWebhooks, s.apiWebhookDelete))
	mux.HandleFunc("/api/", s.apiNotFound)
}

// Sweep is the API's pass of the janitor: it forgets tokens not checked
// within their TTL.
func (s *API) Sweep(ctx context.Context) { s.tokens.prune(s.clock.Now()) }
