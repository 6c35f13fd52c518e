// Package server is totpbox's registration server over HTTP: the admin
// console (users, MFA devices, the "Register MFA device" wizard, settings,
// audit log), the user portal, the admin JSON API and the verify API that
// applications call at sign-in, and the appliance API
// (enroll/server/appliance) that paired appliances sync with.
//
// The server keeps no state of its own beyond short-lived caches and rate
// limiters: everything lives in a store.Store, so several replicas can share
// one PostgreSQL database. Build one with New, serve its Handler, and run
// its janitor with Run.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/totpbox/totpbox/enroll/server/appliance"
	"github.com/totpbox/totpbox/enroll/server/ratelimit"
	"github.com/totpbox/totpbox/enroll/store"
)

// Sealer encrypts MFA devices' TOTP secrets at rest, bound to their
// device. *store.Sealer implements it.
type Sealer interface {
	// SealDevice seals secret into d.Secret; d.UserID must be set.
	SealDevice(d *store.Device, secret []byte) error
	// OpenDevice returns the secret sealed by SealDevice.
	OpenDevice(d store.Device) ([]byte, error)
}

// Rate is a token-bucket limit: Burst events at once, refilled at
// PerSecond; a negative PerSecond means no limit.
type Rate = ratelimit.Rate

// Limits are the server's rate limits. Zero fields take the defaults of
// DefaultLimits; a negative PerSecond turns that limit off.
type Limits struct {
	// SignInPerIP limits sign-in attempts (password and code steps) from one
	// client address.
	SignInPerIP Rate
	// SignInPerUser limits sign-in attempts for one username.
	SignInPerUser Rate
	// VerifyPerUser limits verify calls for one user, whatever the caller.
	VerifyPerUser Rate
	// VerifyPerIP limits verify calls per end-user address: the "ip" field
	// of the request, or the caller's address when it is absent.
	VerifyPerIP Rate
}

// DefaultLimits are the limits used for zero fields of Limits.
var DefaultLimits = Limits{
	SignInPerIP:   Rate{PerSecond: 0.2, Burst: 10},
	SignInPerUser: Rate{PerSecond: 0.1, Burst: 5},
	VerifyPerUser: Rate{PerSecond: 1, Burst: 10},
	VerifyPerIP:   Rate{PerSecond: 50, Burst: 200},
}

// Config configures a Server. Store and Sealer are required; every other
// field has a default used when it is zero.
type Config struct {
	// Store holds all persistent state.
	Store store.Store
	// Sealer encrypts and decrypts TOTP secrets.
	Sealer Sealer
	// Clock tells the time; nil means the real clock.
	Clock Clock
	// Logger receives the server's logs; nil means slog.Default(). Secrets
	// and codes are never logged.
	Logger *slog.Logger
	// SecureCookies marks session cookies Secure even on plain HTTP, for a
	// server behind a TLS-terminating proxy. Requests over TLS always get
	// Secure cookies.
	SecureCookies bool
	// RegistrationTimeout is how long a pending registration waits for its
	// code before it expires and is removed; default 10 minutes.
	RegistrationTimeout time.Duration
	// SessionLifetime is how long a browser session lasts; default 12 hours.
	SessionLifetime time.Duration
	// ResyncWindow is how many steps either side of the learned drift a
	// resync searches; default 1000.
	ResyncWindow int
	// MaxDevicesPerUser is the default of the per-user limit of MFA devices
	// until the setting is changed; default 8.
	MaxDevicesPerUser int
	// CacheTTL is how long the verify path trusts a cached user with its
	// devices before reading the store again; default 5 seconds, negative
	// disables the cache. Changes made through this server take effect at
	// once; the store's conditional updates keep a stale cache from ever
	// accepting a code it should refuse.
	CacheTTL time.Duration
	// JanitorInterval is how often Run removes expired registrations and
	// sessions and clears expired lockouts; default 30 seconds.
	JanitorInterval time.Duration
	// Limits are the rate limits.
	Limits Limits
	// Appliances is the appliance API: the server serves it under
	// /api/v1/appliance/, pairs and lists appliances on the console's
	// Appliances page, sends offers from the wizard and tells appliances
	// about confirmed, renamed, deleted and expired MFA devices. Nil means
	// one built on Store, Clock and Logger with the package's defaults.
	Appliances *appliance.API
}

// Server is the registration server. It is safe for concurrent use.
type Server struct {
	cfg     Config
	store   store.Store
	sealer  Sealer
	clock   Clock
	log     *slog.Logger
	views   *views
	handler http.Handler

	signinIP, signinUser *ratelimit.Limiter
	verifyIP, verifyUser *ratelimit.Limiter

	cache    *deviceCache
	uses     *store.UseBatcher // group commit of accepted codes
	settings *settingsCache
	tokens   *tokenCache

	appliances *appliance.API
	metrics    *metrics
	sent       *sentOffers

	runOnce sync.Once
}

// New returns a server for cfg, or an error naming the missing or bad field.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("server: Config.Store is required")
	}
	if cfg.Sealer == nil {
		return nil, errors.New("server: Config.Sealer is required")
	}
	if cfg.Clock == nil {
		cfg.Clock = realClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.RegistrationTimeout == 0 {
		cfg.RegistrationTimeout = 10 * time.Minute
	}
	if cfg.SessionLifetime == 0 {
		cfg.SessionLifetime = 12 * time.Hour
	}
	if cfg.ResyncWindow == 0 {
		cfg.ResyncWindow = 1000
	}
	if cfg.MaxDevicesPerUser == 0 {
		cfg.MaxDevicesPerUser = 8
	}
	if cfg.CacheTTL == 0 {
		cfg.CacheTTL = 5 * time.Second
	}
	if cfg.JanitorInterval == 0 {
		cfg.JanitorInterval = 30 * time.Second
	}
	switch {
	case cfg.RegistrationTimeout < 0:
		return nil, fmt.Errorf("server: RegistrationTimeout %v is negative", cfg.RegistrationTimeout)
	case cfg.SessionLifetime < 0:
		return nil, fmt.Errorf("server: SessionLifetime %v is negative", cfg.SessionLifetime)
	case cfg.ResyncWindow < 0 || cfg.ResyncWindow > 100000:
		return nil, fmt.Errorf("server: ResyncWindow %d is outside 0..100000", cfg.ResyncWindow)
	case cfg.MaxDevicesPerUser < 0:
		return nil, fmt.Errorf("server: MaxDevicesPerUser %d is negative", cfg.MaxDevicesPerUser)
	case cfg.JanitorInterval < 0:
		return nil, fmt.Errorf("server: JanitorInterval %v is negative", cfg.JanitorInterval)
	}
	cfg.Limits = cfg.Limits.withDefaults()
	if cfg.Appliances == nil {
		cfg.Appliances = appliance.New(appliance.Config{Store: cfg.Store, Clock: cfg.Clock, Logger: cfg.Logger})
	}
	v, err := loadViews()
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:        cfg,
		store:      cfg.Store,
		sealer:     cfg.Sealer,
		clock:      cfg.Clock,
		log:        cfg.Logger,
		views:      v,
		signinIP:   ratelimit.New(cfg.Limits.SignInPerIP),
		signinUser: ratelimit.New(cfg.Limits.SignInPerUser),
		verifyIP:   ratelimit.New(cfg.Limits.VerifyPerIP),
		verifyUser: ratelimit.New(cfg.Limits.VerifyPerUser),
		cache:      newDeviceCache(cfg.CacheTTL),
		uses:       store.NewUseBatcher(cfg.Store),
		tokens:     newTokenCache(cfg.CacheTTL),
		appliances: cfg.Appliances,
		sent:       newSentOffers(),
	}
	s.settings = &settingsCache{s: s}
	s.metrics = newMetrics(s)
	s.handler = s.routes()
	return s, nil
}

// Handler returns the server's HTTP handler: console, portal, admin and
// verify APIs, the appliance API, /healthz and /readyz. It does not serve
// /metrics: see MetricsHandler.
func (s *Server) Handler() http.Handler { return s.handler }

// Appliances returns the appliance API the server mounts and drives.
func (s *Server) Appliances() *appliance.API { return s.appliances }

// Run runs the janitor until ctx is done: every JanitorInterval it removes
// expired pending registrations (telling the appliances they were offered
// to) and sessions, clears expired lockouts and forgets idle rate-limit
// state. It runs the appliance API's janitor too. It sweeps once at start
// and returns ctx.Err().
func (s *Server) Run(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.appliances.Run(ctx)
	}()
	defer func() { <-done }()
	t := time.NewTicker(s.cfg.JanitorInterval)
	defer t.Stop()
	for {
		s.sweep(ctx)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

func (l Limits) withDefaults() Limits {
	def := func(r, d Rate) Rate {
		if r.PerSecond == 0 {
			return d
		}
		if r.Burst <= 0 {
			r.Burst = 1
		}
		return r
	}
	l.SignInPerIP = def(l.SignInPerIP, DefaultLimits.SignInPerIP)
	l.SignInPerUser = def(l.SignInPerUser, DefaultLimits.SignInPerUser)
	l.VerifyPerUser = def(l.VerifyPerUser, DefaultLimits.VerifyPerUser)
	l.VerifyPerIP = def(l.VerifyPerIP, DefaultLimits.VerifyPerIP)
	return l
}
