// Package server assembles totpbox's registration server: it builds the
// core (enroll/server/core) and the layers over it, each serving one
// audience, and mounts them on one handler:
//
//   - enroll/server/console: the admin console and the user portal (HTML,
//     sessions);
//   - enroll/server/api: the admin JSON API and the verify API (bearer
//     tokens);
//   - enroll/server/appliance: the appliance API (signed requests);
//   - enroll/server/radius: the RADIUS listener (UDP), for VPNs, Wi-Fi
//     and PAM, served by ServeRADIUS.
//
// The server keeps no state of its own beyond short-lived caches and rate
// limiters: everything lives in the store, so several replicas can share
// one PostgreSQL database; the fleet bus (enroll/server/fleet, LISTEN/
// NOTIFY) tells them of each other's changes at once. Build one with New, serve its Handler, and run
// its janitor with Run. totpserver and the simulator both assemble it
// through enroll/server/serve.
package server

import (
	"crypto/rand"
	"encoding/hex"
	"github.com/totpbox/totpbox/enroll/store"

	"context"
	"errors"
	"fmt"
	"github.com/totpbox/totpbox/enroll/server/api"
	"github.com/totpbox/totpbox/enroll/server/console"
	"github.com/totpbox/totpbox/enroll/server/core"
	"github.com/totpbox/totpbox/enroll/server/oidc"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/totpbox/totpbox/enroll/server/appliance"
	"github.com/totpbox/totpbox/enroll/server/events"
	"github.com/totpbox/totpbox/enroll/server/events/syslog"
	"github.com/totpbox/totpbox/enroll/server/events/webhook"
	"github.com/totpbox/totpbox/enroll/server/fleet"
	"github.com/totpbox/totpbox/enroll/server/radius"
	"github.com/totpbox/totpbox/enroll/server/ratelimit"
	"github.com/totpbox/totpbox/enroll/server/scim"
	"github.com/totpbox/totpbox/internal/wallclock"
)

// Sealer encrypts MFA devices' TOTP secrets at rest, bound to their
// device. *store.Sealer implements it.
type Sealer = core.Sealer

// Clock tells the server the time; nil in Config means the real clock.
type Clock = core.Clock

// Store is every role of the store the server's parts use. The SQLite
// and PostgreSQL stores (store.Store) satisfy it.
type Store interface {
	core.Store
	console.Store
	api.Store
	appliance.Store
	scim.Store
}

// Rate is a token-bucket limit: Burst events at once, refilled at
// PerSecond; a negative PerSecond means no limit.
type Rate = ratelimit.Rate

// Limits are the server's rate limits. Zero fields take the defaults of
// DefaultLimits; a negative PerSecond turns that limit off.
type Limits struct {
	// SignInPerIP limits console sign-in attempts from one client address,
	// for browsers without a device cookie.
	SignInPerIP Rate
	// SignInPerUser limits console sign-in attempts for one username from
	// every browser without a device cookie for it, whatever its address
	// (shared by the replicas on PostgreSQL): the bound on guessing one
	// account's password. Its exhaustion refuses only such browsers.
	SignInPerUser Rate
	// SignInPerDevice limits console sign-in attempts from one browser
	// with a device cookie for the username (issued when it signed in as
	// that user): its own budget, which nobody elsewhere can spend, so the
	// user cannot be locked out of their own browsers.
	SignInPerDevice Rate
	// VerifyPerUser limits verify calls for one user, whatever the caller.
	VerifyPerUser Rate
	// VerifyPerIP limits verify calls per end-user address: the "ip" field
	// of the request, or the caller's address when it is absent.
	VerifyPerIP Rate
}

// DefaultLimits are the limits used for zero fields of Limits.
var DefaultLimits = Limits{
	SignInPerIP: Rate{PerSecond: 0.2, Burst: 10},
	// 10 at once, then one every 6 minutes: at most 250 a day.
	SignInPerUser: Rate{PerSecond: 1.0 / 360, Burst: 10},
	// 5 at once, then one a minute.
	SignInPerDevice: Rate{PerSecond: 1.0 / 60, Burst: 5},
	VerifyPerUser:   Rate{PerSecond: 1, Burst: 10},
	VerifyPerIP:     Rate{PerSecond: 50, Burst: 200},
}

// Config configures a Server. Store and Sealer are required; every other
// field has a default used when it is zero.
type Config struct {
	// Store holds all persistent state.
	Store Store
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
	// LabelTemplate makes the account part of otpauth labels from
	// {user} and {device}; empty means core.DefaultLabelTemplate,
	// "{user} ({device})".
	LabelTemplate string
	// SessionLifetime is how long a browser session lasts; default 12 hours.
	SessionLifetime time.Duration
	// ResyncWindow is how many steps either side of the learned drift a
	// resync searches; default 1000.
	ResyncWindow int
	// HOTPLookAhead and HOTPResyncWindow are the HOTP windows (see
	// core.Config); 0 means the defaults, 10 and 100.
	HOTPLookAhead, HOTPResyncWindow int
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
	// Passwords are the argon2id parameters of new password hashes; a hash
	// made with others is made again at its owner's next sign-in. Zero
	// means store.DefaultPasswordParams.
	Passwords store.PasswordParams
	// TrustedProxies are the reverse proxies (load balancers) in front of
	// the server: only from these peers is X-Forwarded-For believed, for
	// rate limits, the audit log and logs. Empty: the peer is the client.
	TrustedProxies []netip.Prefix
	// PasswordChecks bounds how many sign-in password checks (argon2id,
	// 19 MiB each) run at once; the rest wait half a second and are then
	// answered 503 with Retry-After. Zero means
	// console.DefaultPasswordChecks(): twice the CPUs, at most 2.
	PasswordChecks int
	// Directory checks the passwords of users from the LDAP directory
	// (nil: none configured); DirectoryStatus, when set, says whether the
	// directory's sync is failing, for the console's banner.
	Directory       core.PasswordChecker
	DirectoryStatus func() error
	// OIDC, when set, signs admins and users in through the
	// organisation's OpenID Provider (enroll/server/oidc): the console's
	// GET /signin/oidc and the path of its redirect_url.
	OIDC *oidc.Provider
	// Appliance configures the appliance API: the server serves it under
	// /api/v1/appliance/, pairs and lists appliances on the console's
	// Appliances page, sends offers from the wizard and tells appliances
	// about confirmed, renamed, deleted and expired MFA devices. Its
	// Store, Clock and Logger, when nil, are the server's.
	Appliance appliance.Config
	// Syslog, when not nil, sends every audit event to a syslog collector
	// (enroll/server/events/syslog); Run runs its writer and its metrics
	// join MetricsHandler's. Its Logger, when nil, is the server's.
	Syslog *syslog.Config
	// Webhooks configures the webhook deliverer, which every replica
	// runs (in Run): the store's leases give each delivery to one.
	Webhooks Webhooks
	// RADIUS configures the RADIUS listener (enroll/server/radius); it is
	// built only when RADIUS.Clients is not empty, and served by
	// ServeRADIUS. Its Core, Clock and Logger are the server's; zero
	// password limits are the sign-in limits.
	RADIUS radius.Config
	// SCIM configures SCIM provisioning at /scim/v2 (enroll/server/scim):
	// the groups whose membership grants use and admin. Its Core, Store,
	// Clock and Logger are the server's.
	SCIM scim.Config
}

// Server is the registration server. It is safe for concurrent use.
type Server struct {
	cfg        Config
	log        *slog.Logger
	core       *core.Core
	console    *console.Console
	api        *api.API
	appliances *appliance.API
	scim       *scim.Service
	radius     *radius.Server
	bus        *fleet.Bus
	syslog     *syslog.Writer
	webhooks   *webhook.Deliverer
	handler    http.Handler
}

// New returns a server for cfg, or an error naming the missing or bad field.
func New(cfg Config) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	bus := fleet.New(cfg.Store, cfg.Logger)
	limits := sharedLimits(cfg.Store, cfg.Logger)
	var sinks events.Sinks
	var sl *syslog.Writer
	if cfg.Syslog != nil {
		sc := *cfg.Syslog
		if sc.Logger == nil {
			sc.Logger = cfg.Logger
		}
		if sl, err = syslog.New(sc); err != nil {
			return nil, err
		}
		sinks = append(sinks, sl)
	}
	ac := cfg.Appliance
	if ac.Events == nil && len(sinks) > 0 {
		ac.Events = sinks
	}
	if ac.Limits == nil {
		ac.Limits = limits
	}
	if ac.Bus == nil {
		ac.Bus = bus
	}
	if ac.Store == nil {
		ac.Store = cfg.Store
	}
	if ac.Clock == nil {
		ac.Clock = cfg.Clock
	}
	if ac.Logger == nil {
		ac.Logger = cfg.Logger
	}
	apps, err := appliance.New(ac)
	if err != nil {
		return nil, err
	}
	c, err := core.New(core.Config{
		Directory:           cfg.Directory,
		Store:               cfg.Store,
		Sealer:              cfg.Sealer,
		Appliances:          apps,
		Clock:               cfg.Clock,
		Logger:              cfg.Logger,
		RegistrationTimeout: cfg.RegistrationTimeout,
		LabelTemplate:       cfg.LabelTemplate,
		Passwords:           cfg.Passwords,
		ResyncWindow:        cfg.ResyncWindow,
		HOTPLookAhead:       cfg.HOTPLookAhead,
		HOTPResyncWindow:    cfg.HOTPResyncWindow,
		MaxDevicesPerUser:   cfg.MaxDevicesPerUser,
		CacheTTL:            cfg.CacheTTL,
		VerifyPerUser:       cfg.Limits.VerifyPerUser,
		VerifyPerIP:         cfg.Limits.VerifyPerIP,
		Bus:                 bus,
		Limits:              limits,
		Events:              optSink(sinks),

		AllowPrivateWebhooks: cfg.Webhooks.AllowPrivateTargets,
	})
	if err != nil {
		return nil, err
	}
	con, err := console.New(console.Config{
		Core:            c,
		Store:           cfg.Store,
		Clock:           cfg.Clock,
		Logger:          cfg.Logger,
		SecureCookies:   cfg.SecureCookies,
		SessionLifetime: cfg.SessionLifetime,
		SignInPerIP:     cfg.Limits.SignInPerIP,
		SignInPerUser:   cfg.Limits.SignInPerUser,
		SignInPerDevice: cfg.Limits.SignInPerDevice,
		DeviceKeys:      deviceKeys(cfg.Sealer),
		Limits:          limits,
		PasswordChecks:  cfg.PasswordChecks,
		DirectoryStatus: cfg.DirectoryStatus,
		OIDC:            cfg.OIDC,
	})
	if err != nil {
		return nil, err
	}
	a, err := api.New(api.Config{Core: c, Store: cfg.Store, Clock: cfg.Clock, Logger: cfg.Logger, TokenTTL: cfg.CacheTTL, Bus: bus})
	if err != nil {
		return nil, err
	}
	sc := cfg.SCIM
	sc.Core, sc.Store, sc.Clock, sc.Logger = c, cfg.Store, cfg.Clock, cfg.Logger
	prov, err := scim.New(sc)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger, core: c, console: con, api: a, appliances: apps, scim: prov, bus: bus, syslog: sl}
	if sl != nil {
		if err := c.RegisterMetrics(sl.Metrics()...); err != nil {
			return nil, err
		}
	}
	if ws, ok := cfg.Store.(webhook.Store); ok && c.WebhookSealer() != nil {
		var b [6]byte
		rand.Read(b[:])
		if s.webhooks, err = webhook.New(webhook.Config{Store: ws, Sealer: c.WebhookSealer(), Owner: "replica-" + hex.EncodeToString(b[:]),
			AllowPrivateTargets: cfg.Webhooks.AllowPrivateTargets, Poll: cfg.Webhooks.Poll, Clock: cfg.Clock, Logger: cfg.Logger,
			Transport: cfg.Webhooks.Transport}); err != nil {
			return nil, err
		}
		if err := c.RegisterMetrics(s.webhooks.Metrics()...); err != nil {
			return nil, err
		}
		bus.Handle(core.NoticeWebhookEvent, func(string) { s.webhooks.Wake() })
	}
	if len(cfg.RADIUS.Clients) > 0 {
		rc := cfg.RADIUS
		rc.Core, rc.Clock, rc.Logger = c, cfg.Clock, cfg.Logger
		if rc.Limits == nil {
			rc.Limits = limits
		}
		if rc.PasswordPerUser.PerSecond == 0 {
			rc.PasswordPerUser = cfg.Limits.SignInPerUser
		}
		if rc.PasswordPerIP.PerSecond == 0 {
			rc.PasswordPerIP = cfg.Limits.SignInPerIP
		}
		if s.radius, err = radius.New(rc); err != nil {
			return nil, err
		}
	}
	s.handler = s.routes()
	return s, nil
}

// withDefaults returns cfg with defaults for its zero fields, or an error
// naming the missing or bad field.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.Store == nil {
		return cfg, errors.New("server: Config.Store is required")
	}
	if cfg.Sealer == nil {
		return cfg, errors.New("server: Config.Sealer is required")
	}
	if cfg.Clock == nil {
		cfg.Clock = wallclock.Clock{}
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
		return cfg, fmt.Errorf("server: RegistrationTimeout %v is negative", cfg.RegistrationTimeout)
	case cfg.SessionLifetime < 0:
		return cfg, fmt.Errorf("server: SessionLifetime %v is negative", cfg.SessionLifetime)
	case cfg.ResyncWindow < 0 || cfg.ResyncWindow > 100000:
		return cfg, fmt.Errorf("server: ResyncWindow %d is outside 0..100000", cfg.ResyncWindow)
	case cfg.MaxDevicesPerUser < 0:
		return cfg, fmt.Errorf("server: MaxDevicesPerUser %d is negative", cfg.MaxDevicesPerUser)
	case cfg.JanitorInterval < 0:
		return cfg, fmt.Errorf("server: JanitorInterval %v is negative", cfg.JanitorInterval)
	}
	cfg.Limits = cfg.Limits.withDefaults()
	return cfg, nil
}

// Webhooks configures webhook delivery.
type Webhooks struct {
	// AllowPrivateTargets lets endpoints be on private and loopback
	// addresses, and plain http (webhooks.allow_private_targets).
	AllowPrivateTargets bool
	// Poll is how often each replica reads the outbox besides the
	// notices that wake it; zero means a second.
	Poll time.Duration
	// Transport, when set, replaces the deliveries' HTTP transport
	// (tests).
	Transport http.RoundTripper
}

// optSink is sinks, or nil when there are none.
func optSink(sinks events.Sinks) events.Sink {
	if len(sinks) == 0 {
		return nil
	}
	return sinks
}

// Handler returns the server's HTTP handler: console, portal, admin and
// verify APIs, the appliance API, /healthz and /readyz. It does not serve
// /metrics: see MetricsHandler.
func (s *Server) Handler() http.Handler { return s.handler }

// MetricsHandler serves the server's Prometheus metrics. Handler does not
// include it, so metrics are never public by accident: serve it on a
// separate listener (totpserver's metrics.listen).
func (s *Server) MetricsHandler() http.Handler { return s.core.MetricsHandler() }

// ServeRADIUS answers RADIUS Access-Requests on pc until ctx ends, then
// lets the requests in flight answer and returns nil. It is an error when
// Config.RADIUS has no clients.
func (s *Server) ServeRADIUS(ctx context.Context, pc net.PacketConn) error {
	if s.radius == nil {
		return errors.New("server: RADIUS has no clients")
	}
	return s.radius.Serve(ctx, pc)
}

// Appliances returns the appliance API the server mounts and drives.
func (s *Server) Appliances() *appliance.API { return s.appliances }

// Bus returns the fleet bus that carries the server's notices to the
// other replicas sharing its store.
func (s *Server) Bus() *fleet.Bus { return s.bus }

// Core returns the server's operations, for programs and tests that act
// without going through HTTP.
func (s *Server) Core() *core.Core { return s.core }

// Run runs the janitor until ctx is done: every JanitorInterval it removes
// expired pending registrations (telling the appliances they were offered
// to) and sessions, clears expired lockouts and forgets idle rate-limit
// state. It runs the appliance API's janitor too, and the fleet bus that
// hears the other replicas sharing a PostgreSQL store. It sweeps once at
// start; when ctx ends it flushes (Flush) and returns ctx.Err().
func (s *Server) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { s.appliances.Run(ctx) })
	wg.Go(func() { s.bus.Run(ctx) })
	if s.syslog != nil {
		wg.Go(func() { s.syslog.Run(ctx) })
	}
	if s.webhooks != nil {
		wg.Go(func() { s.webhooks.Run(ctx) })
	}
	defer wg.Wait()
	t := time.NewTicker(s.cfg.JanitorInterval)
	defer t.Stop()
	for {
		s.Sweep(ctx)
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			s.Flush(fctx)
			cancel()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Flush writes to the store what the server holds in memory between
// janitor passes: this server's verify counts and the audit rows of
// refused sign-in attempts of the current minute. Run calls it as it
// returns, so a shutdown loses neither (a crash loses them).
func (s *Server) Flush(ctx context.Context) {
	if err := s.core.FlushVerifyCounts(ctx); err != nil {
		s.log.Error("flush verify counts", "err", err)
	}
	s.console.FlushRefusals(ctx)
	if s.radius != nil {
		s.radius.FlushRejects(ctx)
	}
}

// Sweep is one pass of the janitor over every part; Run calls it.
func (s *Server) Sweep(ctx context.Context) {
	s.core.Sweep(ctx)
	s.core.MonitorAppliances(ctx, s.cfg.JanitorInterval)
	s.console.Sweep(ctx)
	if s.radius != nil {
		s.radius.Sweep(ctx)
	}
	s.api.Sweep(ctx)
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
	l.SignInPerDevice = def(l.SignInPerDevice, DefaultLimits.SignInPerDevice)
	l.VerifyPerUser = def(l.VerifyPerUser, DefaultLimits.VerifyPerUser)
	l.VerifyPerIP = def(l.VerifyPerIP, DefaultLimits.VerifyPerIP)
	return l
}

// deviceKeys returns the keys of the console's device cookies: the
// sealer's, derived from the master keys every replica shares, or nil (a
// key of this process) for a sealer that cannot make MACs.
func deviceKeys(s Sealer) console.DeviceKeys {
	k, _ := s.(console.DeviceKeys)
	return k
}

// sharedLimits returns the factory of the limits that protect against
// guessing: kept in the store when it is shared (PostgreSQL implements
// store.RateBuckets), so the budget does not grow with the replicas; nil
// (in process) otherwise.
func sharedLimits(st Store, log *slog.Logger) ratelimit.Factory {
	b, ok := st.(store.RateBuckets)
	if !ok {
		return nil
	}
	return func(name string, r Rate) ratelimit.Limit { return ratelimit.NewShared(b, name, r, log) }
}

// Every store the server opens is every role its parts ask for.
var _ Store = store.Store(nil)
