package console

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/totpbox/totpbox/enroll/server/core"
	"github.com/totpbox/totpbox/enroll/server/oidc"
	"github.com/totpbox/totpbox/enroll/server/ratelimit"
	"github.com/totpbox/totpbox/enroll/store"
	"github.com/totpbox/totpbox/internal/wallclock"
)

// Store is what the console and portal read themselves: users to list
// and show, MFA devices, the audit log and sessions. Every change goes
// through the core. The SQLite and PostgreSQL stores satisfy it.
type Store interface {
	UserByName(ctx context.Context, username string) (store.User, error)
	UserByID(ctx context.Context, id int64) (store.User, error)
	ListUsers(ctx context.Context, query string, limit int) ([]store.User, error)
	DevicesByUser(ctx context.Context, userID int64) ([]store.Device, error)
	DevicesOnAppliance(ctx context.Context, applianceID string) ([]store.Device, error)
	// VerifyDays reads a user's daily verify counts for their page.
	VerifyDays(ctx context.Context, userID int64, since time.Time) ([]store.VerifyDay, error)
	AuditEvents(ctx context.Context, limit int, before int64) ([]store.AuditEvent, error)
	AuditAfter(ctx context.Context, q store.AuditQuery) ([]store.AuditEvent, error)

	CreateSession(ctx context.Context, s store.Session) error
	SessionByHash(ctx context.Context, hash []byte) (store.Session, error)
	UpdateSession(ctx context.Context, s store.Session) error
	DeleteSession(ctx context.Context, hash []byte) error
	DeleteExpiredSessions(ctx context.Context, now time.Time) error
	// UseNonce records an OIDC sign-in's state as used; a second use is
	// store.ErrConflict.
	UseNonce(ctx context.Context, keyID, nonce string, expires time.Time) error
}

// Config configures a Console. Core and Store are required.
type Config struct {
	// Core does the operations the pages ask for.
	Core *core.Core
	// Store is read for the pages and holds sessions.
	Store Store
	// Clock tells the time; nil means the real clock.
	Clock core.Clock
	// Logger receives the console's logs; nil means slog.Default().
	Logger *slog.Logger
	// SecureCookies marks session cookies Secure even on plain HTTP.
	SecureCookies bool
	// SessionLifetime is how long a browser session lasts; it must be
	// positive.
	SessionLifetime time.Duration
	// SignInPerIP limits password attempts per client address, for
	// clients without a device cookie.
	SignInPerIP core.Rate
	// SignInPerUser limits the password attempts for one username of every
	// client without a device cookie for it, whatever their addresses: it
	// bounds guessing against one account.
	SignInPerUser core.Rate
	// SignInPerDevice limits the password attempts from one browser that
	// carries a device cookie for the username (it signed in as that user
	// before); such a browser spends neither of the limits above, so
	// nobody else can lock the user out of it.
	SignInPerDevice core.Rate
	// Limits makes the per-user and per-device sign-in limits
	// (LimitSignInUser, LimitSignInDevice), shared by every replica on
	// PostgreSQL; nil keeps them in this process. The per-address limit
	// stays in the process: guesses spread over addresses are bounded by
	// the per-user limit, and a shared write per address would cost every
	// sign-in a second one.
	Limits ratelimit.Factory
	// SignInIPLimiter, SignInUserLimiter and SignInDeviceLimiter, when
	// set, hold the sign-in limits instead of buckets of SignInPerIP,
	// SignInPerUser and SignInPerDevice made by Limits. They are keyed by
	// address, username and device cookie.
	SignInIPLimiter, SignInUserLimiter, SignInDeviceLimiter Limiter
	// DeviceKeys signs and checks device cookies; nil means a random key
	// of this process (cookies then die with it, and other replicas do
	// not honour them). The server passes its *store.Sealer.
	DeviceKeys DeviceKeys
	// PasswordChecks bounds how many sign-in password checks (argon2id,
	// 19 MiB each) run at once; the rest wait briefly and are then
	// answered 503. Zero means DefaultPasswordChecks().
	PasswordChecks int
	// DirectoryStatus, when set, returns the directory sync's error while
	// it fails: admins then see a banner saying so.
	DirectoryStatus func() error
	// OIDC, when set, signs people in through the organisation's OpenID
	// Provider (GET /signin/oidc and the path of its redirect_url); local
	// passwords then follow its allow_local_signin and
	// local_signin_from, and a local admin's sign-in is break glass.
	OIDC *oidc.Provider
}

// Console serves the admin console and the user portal.
type Console struct {
	cfg   Config
	core  *core.Core
	store Store
	clock core.Clock
	log   *slog.Logger
	views *views

	signinIP, signinUser, signinDevice Limiter
	deviceKeys                         DeviceKeys
	hashing                            hashSlots
	refused                            refusals
	localFrom                          []netip.Prefix
}

// Names of the sign-in limits for Config.Limits.
const (
	// LimitSignInUser is the per-user limit of untrusted clients.
	LimitSignInUser = "signin-user"
	// LimitSignInDevice is the per-device limit of browsers with a device
	// cookie.
	LimitSignInDevice = "signin-device"
)

// New returns a console for cfg, or an error naming what is missing or
// wrong.
func New(cfg Config) (*Console, error) {
	switch {
	case cfg.Core == nil:
		return nil, errors.New("console: Config.Core is required")
	case cfg.Store == nil:
		return nil, errors.New("console: Config.Store is required")
	case cfg.SessionLifetime <= 0:
		return nil, errors.New("console: Config.SessionLifetime must be positive")
	}
	if cfg.Clock == nil {
		cfg.Clock = wallclock.Clock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.SignInIPLimiter == nil {
		cfg.SignInIPLimiter = ratelimit.New(cfg.SignInPerIP)
	}
	if cfg.SignInUserLimiter == nil {
		cfg.SignInUserLimiter = cfg.Limits.New(LimitSignInUser, cfg.SignInPerUser)
	}
	if cfg.SignInDeviceLimiter == nil {
		cfg.SignInDeviceLimiter = cfg.Limits.New(LimitSignInDevice, cfg.SignInPerDevice)
	}
	if cfg.DeviceKeys == nil {
		cfg.DeviceKeys = newProcessKey()
	}
	if cfg.PasswordChecks <= 0 {
		cfg.PasswordChecks = DefaultPasswordChecks()
	}
	v, err := loadViews()
	if err != nil {
		return nil, err
	}
	var from []netip.Prefix
	if cfg.OIDC != nil {
		if from, err = oidc.ParsePrefixes(cfg.OIDC.Config().LocalSigninFrom); err != nil {
			return nil, fmt.Errorf("console: oidc.local_signin_from: %v", err)
		}
	}
	return &Console{
		localFrom:    from,
		cfg:          cfg,
		core:         cfg.Core,
		store:        cfg.Store,
		clock:        cfg.Clock,
		log:          cfg.Logger,
		views:        v,
		signinIP:     cfg.SignInIPLimiter,
		signinUser:   cfg.SignInUserLimiter,
		signinDevice: cfg.SignInDeviceLimiter,
		deviceKeys:   cfg.DeviceKeys,
		hashing:      newHashSlots(cfg.PasswordChecks),
	}, nil
}

// Sweep is the console's pass of the janitor: it removes expired sessions
// forgets idle sign-in rate-limit state and writes the audit rows of the
// refused sign-in attempts of minutes that have ended.
func (s *Console) Sweep(ctx context.Context) {
	now := s.clock.Now()
	if err := s.store.DeleteExpiredSessions(ctx, now.UTC()); err != nil {
		s.log.Error("janitor: remove expired sessions", "err", err)
	}
	for _, l := range []Limiter{s.signinIP, s.signinUser, s.signinDevice} {
		if p, ok := l.(pruner); ok {
			p.Prune(now)
		}
	}
	s.refused.flush(ctx, s.core, now, false)
}

// ErrorPage answers err as the console's error page: a Failure's status
// and message, or 500 "internal error" (logged) for any other error.
func (s *Console) ErrorPage(w http.ResponseWriter, r *http.Request, err error) {
	s.errorPage(w, r, nil, err)
}

// Mux is where Register adds routes; *http.ServeMux is one.
type Mux interface {
	HandleFunc(pattern string, handler func(http.ResponseWriter, *http.Request))
}

// Register adds the console's and the portal's routes to mux: pages and
// actions live one per file; the device pages serve both the console
// (/users/{username}/...) and the portal (/portal/...), told apart by
// their scope.
func (s *Console) Register(mux Mux) {
	mux.HandleFunc("GET /static/{file}", s.serveStatic)
	mux.HandleFunc("GET /{$}", s.home)

	mux.HandleFunc("GET /signin", s.signinShow)
	mux.HandleFunc("POST /signin", s.signinSubmit)
	mux.HandleFunc("GET /signin/code", s.signinCodeShow)
	mux.HandleFunc("POST /signin/code", s.signinCodeSubmit)
	mux.HandleFunc("POST /signout", s.signout)
	if s.cfg.OIDC != nil {
		mux.HandleFunc("GET /signin/oidc", s.signinOIDC)
		mux.HandleFunc("GET "+s.cfg.OIDC.CallbackPath(), s.signinOIDCCallback)
	}

	mux.HandleFunc("GET /users", s.admin(core.OpReadUsers, s.usersList))
	mux.HandleFunc("GET /users/new", s.admin(core.OpManageUsers, s.userNew))
	mux.HandleFunc("POST /users", s.admin(core.OpManageUsers, s.userCreate))
	mux.HandleFunc("GET /users/{username}", s.admin(core.OpReadUsers, s.userShow))
	mux.HandleFunc("POST /users/{username}/disable", s.admin(core.OpManageUsers, s.userDisable))
	mux.HandleFunc("POST /users/{username}/enable", s.admin(core.OpManageUsers, s.userEnable))
	mux.HandleFunc("POST /users/{username}/password", s.admin(core.OpManageUsers, s.userPassword))
	mux.HandleFunc("GET /users/{username}/mfa-devices", s.consoleFor(core.OpReadUsers, s.devicesTab))
	mux.HandleFunc("POST /users/{username}/mfa-devices/{id}/send", s.consoleFor(core.OpManageDevices, s.deviceSend))

	mux.HandleFunc("GET /settings", s.admin(core.OpReadSettings, s.settingsShow))
	mux.HandleFunc("POST /settings", s.admin(core.OpSettings, s.settingsSave))
	mux.HandleFunc("GET /audit", s.admin(core.OpReadAudit, s.auditShow))
	mux.HandleFunc("GET /audit.csv", s.admin(core.OpReadAudit, s.auditCSV))
	mux.HandleFunc("GET /webhooks", s.admin(core.OpReadWebhooks, s.webhooksShow))
	mux.HandleFunc("POST /webhooks", s.admin(core.OpWebhooks, s.webhookCreate))
	mux.HandleFunc("POST /webhooks/{id}/delete", s.admin(core.OpWebhooks, s.webhookDelete))
	mux.HandleFunc("POST /webhooks/deliveries/{id}/redeliver", s.admin(core.OpWebhooks, s.webhookRedeliver))

	mux.HandleFunc("GET /appliances", s.admin(core.OpReadAppliances, s.appliancesShow))
	mux.HandleFunc("GET /hardware-tokens", s.admin(core.OpReadHardwareTokens, s.hardwareTokensShow))
	mux.HandleFunc("POST /hardware-tokens/assign", s.admin(core.OpManageDevices, s.hardwareTokenAssign))
	mux.HandleFunc("POST /appliances", s.admin(core.OpAppliances, s.appliancePair))
	mux.HandleFunc("GET /appliances/{appliance}", s.admin(core.OpReadAppliances, s.applianceShow))
	mux.HandleFunc("GET /appliances/{appliance}/rename", s.admin(core.OpAppliances, s.applianceRenameShow))
	mux.HandleFunc("POST /appliances/{appliance}/rename", s.admin(core.OpAppliances, s.applianceRenameSubmit))
	mux.HandleFunc("GET /appliances/{appliance}/unpair", s.admin(core.OpAppliances, s.applianceUnpairShow))
	mux.HandleFunc("POST /appliances/{appliance}/unpair", s.admin(core.OpAppliances, s.applianceUnpairSubmit))
	mux.HandleFunc("GET /appliances/{appliance}/forget", s.admin(core.OpAppliances, s.applianceForgetShow))
	mux.HandleFunc("POST /appliances/{appliance}/forget", s.admin(core.OpAppliances, s.applianceForgetSubmit))
	mux.HandleFunc("GET /appliances/{appliance}/replace", s.admin(core.OpAppliances, s.applianceReplaceShow))
	mux.HandleFunc("POST /appliances/{appliance}/replace", s.admin(core.OpAppliances, s.applianceReplaceSubmit))

	mux.HandleFunc("GET /portal", s.signedIn(s.portalShow))
	// An admin registering their own MFA device in the portal sends it to
	// an appliance as they would any user's.
	mux.HandleFunc("POST /portal/mfa-devices/{id}/send", s.portal(s.adminsOwn(s.deviceSend)))

	// The MFA device pages, for admins and for users managing their own.
	// Resync and unlock are a user's recovery of their own device, offered
	// in the portal whether or not users may manage their MFA devices.
	for prefix, wraps := range map[string][2]func(scoped) http.HandlerFunc{
		"/users/{username}": {s.console(core.OpManageDevices), s.console(core.OpManageDevices)},
		"/portal":           {s.portal, s.portalOwn},
	} {
		wrap, own := wraps[0], wraps[1]
		mux.HandleFunc("GET "+prefix+"/mfa-devices/new", wrap(s.deviceNameShow))
		mux.HandleFunc("POST "+prefix+"/mfa-devices", wrap(s.deviceNameSubmit))
		mux.HandleFunc("GET "+prefix+"/mfa-devices/{id}/configure", wrap(s.deviceConfigureShow))
		mux.HandleFunc("POST "+prefix+"/mfa-devices/{id}/confirm", wrap(s.deviceConfirm))
		mux.HandleFunc("GET "+prefix+"/mfa-devices/{id}/qr.png", wrap(s.deviceQR))
		mux.HandleFunc("GET "+prefix+"/mfa-devices/{id}/status", wrap(s.deviceStatus))
		mux.HandleFunc("GET "+prefix+"/mfa-devices/{id}/rename", wrap(s.deviceRenameShow))
		mux.HandleFunc("POST "+prefix+"/mfa-devices/{id}/rename", wrap(s.deviceRenameSubmit))
		mux.HandleFunc("GET "+prefix+"/mfa-devices/{id}/resync", own(s.deviceResyncShow))
		mux.HandleFunc("POST "+prefix+"/mfa-devices/{id}/resync", own(s.deviceResyncSubmit))
		mux.HandleFunc("POST "+prefix+"/mfa-devices/{id}/unlock", own(s.deviceUnlock))
		mux.HandleFunc("GET "+prefix+"/mfa-devices/{id}/delete", wrap(s.deviceDeleteShow))
		mux.HandleFunc("POST "+prefix+"/mfa-devices/{id}/delete", wrap(s.deviceDeleteSubmit))
	}
}
