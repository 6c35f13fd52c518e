package core

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/totpbox/totpbox/enroll/server/appliance"
	"github.com/totpbox/totpbox/enroll/server/events"
	"github.com/totpbox/totpbox/enroll/server/fleet"
	"github.com/totpbox/totpbox/enroll/server/ratelimit"
	"github.com/totpbox/totpbox/enroll/store"
	"github.com/totpbox/totpbox/internal/wallclock"
)

// Store is what the core reads and writes: users, MFA devices, settings
// and the audit log. The SQLite and PostgreSQL stores satisfy it.
type Store interface {
	store.UseRecorder
	// Directory links users to their identity source.
	store.Directory

	UserByID(ctx context.Context, id int64) (store.User, error)
	UserByName(ctx context.Context, username string) (store.User, error)
	CreateUser(ctx context.Context, u *store.User) error
	UpdateUser(ctx context.Context, u store.User) error
	CountAdmins(ctx context.Context) (int, error)
	// DeleteUserSessions ends a user's sessions when they are disabled or
	// their password changes.
	DeleteUserSessions(ctx context.Context, userID int64) error

	CreateDevice(ctx context.Context, d *store.Device) error
	Device(ctx context.Context, id int64) (store.Device, error)
	DevicesByUser(ctx context.Context, userID int64) ([]store.Device, error)
	UserDevices(ctx context.Context, username string) (store.User, []store.Device, error)
	RenameDevice(ctx context.Context, id int64, name string) error
	DeleteDevice(ctx context.Context, id int64) error
	ActivateDevice(ctx context.Context, id int64, u store.UseStep) error
	RecordFailure(ctx context.Context, id int64, rule store.Lockout, now time.Time) (store.Failure, error)
	SetDrift(ctx context.Context, u store.UseStep) error
	FoldAheadSteps(ctx context.Context, id int64, upTo int64) error
	UnlockDevice(ctx context.Context, id int64, lockedUntil time.Time) error
	ClearExpiredLockout(ctx context.Context, id int64, now time.Time) error
	ClearExpiredLockouts(ctx context.Context, now time.Time) ([]store.Device, error)
	DeleteExpiredPending(ctx context.Context, now time.Time) ([]store.Device, error)
	ExpiredRegistration(ctx context.Context, id int64) (store.Device, error)
	// DeleteClockSamples prunes the appliances' clock history.
	DeleteClockSamples(ctx context.Context, before time.Time) (int, error)
	// AddVerifyDays and DeleteVerifyDays keep the daily verify counts.
	AddVerifyDays(ctx context.Context, days []store.VerifyDay) error
	DeleteVerifyDays(ctx context.Context, before time.Time) (int, error)
	CountPending(ctx context.Context) (int, error)

	Settings(ctx context.Context) (map[string]string, error)
	SetSetting(ctx context.Context, name, value string) error

	Audit(ctx context.Context, e store.AuditEvent) error
	// Imported hardware tokens and HOTP counters.
	store.HardwareTokens
	AuditWithEvent(ctx context.Context, e store.AuditEvent, ev store.WebhookEvent) error
	// Atomic runs a change and its audit rows in one transaction.
	Atomic(ctx context.Context, fn func(ctx context.Context) error) error
}

// Sealer encrypts MFA devices' TOTP secrets at rest, bound to their
// device. *store.Sealer implements it.
type Sealer interface {
	// SealDevice seals secret into d.Secret; d.UserID must be set.
	SealDevice(d *store.Device, secret []byte) error
	// OpenDevice returns the secret sealed by SealDevice.
	OpenDevice(d store.Device) ([]byte, error)
	// Imported hardware tokens' secrets, bound to their serial.
	TokenSealer
}

// Clock tells the time. Every decision that depends on time (code steps,
// expiry, lockouts, sessions, rate limits) reads it, so tests and the
// simulator can run the server in virtual time.
type Clock interface {
	Now() time.Time
}

// Rate is a token-bucket limit: Burst events at once, refilled at
// PerSecond; a negative PerSecond means no limit.
type Rate = ratelimit.Rate

// Config configures a Core. Store, Sealer and Appliances are required;
// Clock and Logger default to the real clock and slog.Default(). The
// durations and counts are taken as given: enroll/server fills their
// defaults and checks their ranges.
type Config struct {
	// Store holds users, MFA devices, settings and the audit log.
	Store Store
	// Sealer encrypts and decrypts TOTP secrets.
	Sealer Sealer
	// Appliances is the appliance API the core sends offers through and
	// tells about MFA device changes.
	Appliances *appliance.API
	// Clock tells the time; nil means the real clock.
	Clock Clock
	// Logger receives the core's logs; nil means slog.Default(). Secrets
	// and codes are never logged.
	Logger *slog.Logger
	// RegistrationTimeout is how long a pending registration waits for
	// its code.
	RegistrationTimeout time.Duration
	// ResyncWindow is how many steps either side of the learned drift a
	// resync searches.
	ResyncWindow int
	// HOTPLookAhead is how many counters past an HOTP device's next one a
	// code may come from (a token pressed without signing in); 0 means
	// DefaultHOTPLookAhead.
	HOTPLookAhead int
	// HOTPResyncWindow is how many counters past an HOTP device's next one
	// a resync's two consecutive codes are searched for; 0 means
	// DefaultHOTPResyncWindow.
	HOTPResyncWindow int
	// MaxDevicesPerUser is the per-user limit of MFA devices until the
	// setting is changed.
	MaxDevicesPerUser int
	// CacheTTL is how long the verify path trusts a cached user with its
	// devices; negative disables the cache.
	CacheTTL time.Duration
	// Passwords are the argon2id parameters of new password hashes; a
	// hash made with others is made again at its owner's next sign-in.
	// Zero means store.DefaultPasswordParams.
	Passwords store.PasswordParams
	// LabelTemplate makes the account part of otpauth labels from
	// {user} and {device}; empty means DefaultLabelTemplate. It must pass
	// CheckLabelTemplate.
	LabelTemplate string
	// VerifyPerUser and VerifyPerIP limit verifies per user and per end
	// user address.
	VerifyPerUser, VerifyPerIP Rate
	// Limits makes the limits that protect against guessing
	// (LimitVerifyUser), shared by every replica on PostgreSQL; nil keeps
	// them in this process. The per-address verify limit always stays in
	// the process: it bounds load, not guessing, which the per-user limit
	// and lockouts bound.
	Limits ratelimit.Factory
	// AllowPrivateWebhooks lets webhook endpoints be on private and
	// loopback addresses and plain http (webhooks.allow_private_targets).
	AllowPrivateWebhooks bool
	// Events receives every audit event this core records (syslog);
	// nil sends them nowhere. Its Publish must not block.
	Events events.Sink
	// Directory checks the passwords of users from the LDAP directory;
	// nil when none is configured (such users then cannot sign in with a
	// password).
	Directory PasswordChecker
	// Bus tells the other replicas sharing the store which users and
	// settings changed, so they drop what they cache at once; nil means
	// an in-process bus, right for a single server.
	Bus *fleet.Bus
}

// Core is the registration server's operations, whoever asks for them:
// the console and portal (enroll/server/console) and the JSON APIs
// (enroll/server/api) call the same methods. It is safe for concurrent
// use.
type Core struct {
	cfg    Config
	store  Store
	sealer Sealer
	clock  Clock
	log    *slog.Logger

	verifyIP, verifyUser ratelimit.Limit

	cache *deviceCache
	uses  *store.UseBatcher // group commit of accepted codes
	// verifyUserShared is verifyUser when its buckets are buckets, the
	// core's own store (PostgreSQL); both nil otherwise.
	verifyUserShared *ratelimit.Shared
	buckets          store.RateBuckets
	settings         *settingsCache

	appliances *appliance.API
	metrics    *metrics
	bus        *fleet.Bus

	verifyCounts *verifyCounts // per user and day, until the janitor flushes them
}

// The HOTP windows of RFC 4226 §7.4 when the config sets none: a code
// up to 10 presses ahead is accepted, and two consecutive codes up to 100
// ahead resync the counter.
const (
	DefaultHOTPLookAhead    = 10
	DefaultHOTPResyncWindow = 100
)

// LimitVerifyUser names the per-user verify limit for Config.Limits.
const LimitVerifyUser = "verify-user"

// Kinds of the core's notices on the fleet bus.
const (
	noticeUser     = "user"     // arg: a username whose cached entry is stale
	noticeSettings = "settings" // the settings changed
)

// userChanged drops the cached entry of username on every replica.
func (s *Core) userChanged(username string) { s.bus.Publish(noticeUser, username) }

// New returns a core for cfg, or an error naming the missing field.
func New(cfg Config) (*Core, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("server: Config.Store is required")
	case cfg.Sealer == nil:
		return nil, errors.New("server: Config.Sealer is required")
	case cfg.Appliances == nil:
		return nil, errors.New("server core: Config.Appliances is required")
	}
	if cfg.LabelTemplate != "" {
		if err := CheckLabelTemplate(cfg.LabelTemplate); err != nil {
			return nil, fmt.Errorf("server core: %w", err)
		}
	}
	if cfg.Clock == nil {
		cfg.Clock = wallclock.Clock{}
	}
	if cfg.HOTPLookAhead == 0 {
		cfg.HOTPLookAhead = DefaultHOTPLookAhead
	}
	if cfg.HOTPResyncWindow == 0 {
		cfg.HOTPResyncWindow = DefaultHOTPResyncWindow
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Core{
		cfg:          cfg,
		store:        cfg.Store,
		sealer:       cfg.Sealer,
		clock:        cfg.Clock,
		log:          cfg.Logger,
		verifyIP:     ratelimit.New(cfg.VerifyPerIP),
		verifyUser:   cfg.Limits.New(LimitVerifyUser, cfg.VerifyPerUser),
		cache:        newDeviceCache(cfg.CacheTTL),
		uses:         store.NewUseBatcher(cfg.Store),
		appliances:   cfg.Appliances,
		verifyCounts: newVerifyCounts(),
	}
	if sh, ok := s.verifyUser.(*ratelimit.Shared); ok {
		// The take and the read fold into one statement only when the
		// limit's buckets are in the store the core reads.
		if b, ok := sh.Buckets().(store.RateBuckets); ok && any(b) == any(cfg.Store) {
			s.verifyUserShared, s.buckets = sh, b
		}
	}
	s.settings = &settingsCache{s: s}
	s.metrics = newMetrics(s)
	// The core owns the offer: the appliance API reports each delivery.
	cfg.Appliances.Report(s)
	s.bus = cfg.Bus
	if s.bus == nil {
		s.bus = fleet.New(nil, cfg.Logger)
	}
	s.bus.Handle(noticeUser, s.cache.invalidate)
	s.bus.Handle(noticeSettings, func(string) { s.settings.drop() })
	s.bus.OnResync(func() { s.cache.invalidateAll(); s.settings.drop() })
	return s, nil
}

// Appliances returns the appliance API the core drives.
func (s *Core) Appliances() *appliance.API { return s.appliances }

// RegistrationTimeout is how long a pending registration waits for its
// code.
func (s *Core) RegistrationTimeout() time.Duration { return s.cfg.RegistrationTimeout }

// ResyncWindow is how many steps either side of the learned drift a
// resync searches.
func (s *Core) ResyncWindow() int { return s.cfg.ResyncWindow }

// HOTPResyncWindow is how many counters past an HOTP device's next one a
// resync searches.
func (s *Core) HOTPResyncWindow() int { return s.cfg.HOTPResyncWindow }

// Ready reports whether the store answers a cheap query (the settings)
// before ctx ends.
func (s *Core) Ready(ctx context.Context) error {
	_, err := s.store.Settings(ctx)
	return err
}
