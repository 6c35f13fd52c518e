// Package store persists the registration server's state: users, MFA
// devices, settings, audit events, API tokens and sessions. One interface,
// two implementations: SQLite (the embedded default) and PostgreSQL. The
// conformance suite in storetest runs against both.
//
// Secrets of MFA devices are stored encrypted (see Sealer); the store never
// sees a TOTP secret in the clear.
package store

import (
	"context"
	"errors"
	"time"
)

// Errors every implementation returns, so callers can map them to HTTP
// statuses with errors.Is.
var (
	// ErrNotFound: no such user, MFA device, token or session.
	ErrNotFound = errors.New("not found")
	// ErrConflict: a unique name is taken (username, friendly name per user).
	ErrConflict = errors.New("already exists")
	// ErrStale: a conditional update lost (step already used, state changed).
	ErrStale = errors.New("state changed concurrently")
)

// User is a person who signs in to the portal and owns MFA devices.
type User struct {
	ID           int64
	Username     string
	DisplayName  string
	Email        string
	PasswordHash string // argon2id, PHC string format; empty: cannot sign in
	Admin        bool
	Disabled     bool
	Created      time.Time
}

// DeviceKind says what holds an MFA device's secret.
type DeviceKind string

// Kinds of MFA device.
const (
	KindAppliance        DeviceKind = "appliance"
	KindAuthenticatorApp DeviceKind = "authenticator-app"
)

// DeviceStatus is the state of a registration.
type DeviceStatus string

// Registration states: pending until a correct code is typed, then active.
const (
	StatusPending DeviceStatus = "pending"
	StatusActive  DeviceStatus = "active"
)

// Device is an MFA device: a user's registered TOTP credential.
type Device struct {
	ID           int64
	UserID       int64
	Name         string // friendly name, unique per user
	Kind         DeviceKind
	Status       DeviceStatus
	Algorithm    string // SHA1, SHA256, SHA512
	Digits       int
	PeriodSec    int
	Secret       Sealed // encrypted TOTP secret
	Created      time.Time
	Registered   time.Time // zero while pending
	ExpiresAt    time.Time // pending registrations expire; zero once active
	LastUsedStep int64     // highest accepted step; 0 when never used
	LastUsed     time.Time // zero when never used
	DriftSteps   int64
	FailCount    int
	LockedUntil  time.Time // zero when not locked
}

// Sealed is a ciphertext with the id of the key that sealed it, so master
// keys can rotate.
type Sealed struct {
	KeyID      string
	Ciphertext []byte
}

// AuditEvent is one line of the audit log.
type AuditEvent struct {
	ID     int64
	Time   time.Time
	Actor  string // username, "token:<name>", "appliance:<name>" or "system"
	Action string // e.g. "device.register", "verify.fail", "device.lock"
	Target string // e.g. "user:alice device:3"
	Detail string // never a secret or code
	IP     string
}

// Token is an admin API bearer token; only its SHA-256 hash is stored.
type Token struct {
	ID       int64
	Name     string
	Hash     []byte
	Created  time.Time
	LastUsed time.Time
	Revoked  bool
}

// Session is a signed-in browser session; only the hash of its cookie
// value is stored.
type Session struct {
	Hash      []byte
	UserID    int64
	Created   time.Time
	ExpiresAt time.Time
	CSRF      string
	// MFAPending is true after the password step while a code is still due.
	MFAPending bool
}

// UseStep is the outcome of a verify to record with one conditional update.
type UseStep struct {
	DeviceID int64
	// Step is the matched step; the update succeeds only while the stored
	// LastUsedStep is below it, so one code is accepted at most once.
	Step  int64
	Drift int64
	At    time.Time
}

// Store is the server's persistence. Implementations are safe for
// concurrent use.
type Store interface {
	// Users.
	CreateUser(ctx context.Context, u *User) error // sets ID and Created; ErrConflict on username
	UserByName(ctx context.Context, username string) (User, error)
	UserByID(ctx context.Context, id int64) (User, error)
	// ListUsers returns users whose username, display name or email contains
	// query (case-insensitive), ordered by username; empty query lists all.
	ListUsers(ctx context.Context, query string, limit int) ([]User, error)
	UpdateUser(ctx context.Context, u User) error
	CountAdmins(ctx context.Context) (int, error)

	// MFA devices.
	CreateDevice(ctx context.Context, d *Device) error // ErrConflict on friendly name per user
	Device(ctx context.Context, id int64) (Device, error)
	DevicesByUser(ctx context.Context, userID int64) ([]Device, error)
	RenameDevice(ctx context.Context, id int64, name string) error
	DeleteDevice(ctx context.Context, id int64) error
	// ActivateDevice turns a pending device active if it is still pending
	// and unexpired at now; ErrStale otherwise.
	ActivateDevice(ctx context.Context, id int64, u UseStep) error
	// RecordUse moves LastUsedStep to u.Step only if it is below it, sets
	// drift and last-used time and clears the fail count; ErrStale when the
	// step was already used (a replay or a concurrent verify).
	RecordUse(ctx context.Context, u UseStep) error
	// RecordFailure increments the fail count and, when it reaches
	// threshold, sets LockedUntil to lockUntil. It returns the new count.
	RecordFailure(ctx context.Context, id int64, threshold int, lockUntil time.Time) (int, error)
	// SetDrift stores a drift learned by resync, with its step.
	SetDrift(ctx context.Context, u UseStep) error
	// DeleteExpiredPending removes pending devices whose ExpiresAt is before
	// now and returns them.
	DeleteExpiredPending(ctx context.Context, now time.Time) ([]Device, error)
	CountPending(ctx context.Context) (int, error)

	// Settings, as strings by name; see the server for names and defaults.
	Settings(ctx context.Context) (map[string]string, error)
	SetSetting(ctx context.Context, name, value string) error

	// Audit log, newest first.
	Audit(ctx context.Context, e AuditEvent) error
	AuditEvents(ctx context.Context, limit int, before int64) ([]AuditEvent, error)

	// API tokens.
	CreateToken(ctx context.Context, t *Token) error
	TokenByHash(ctx context.Context, hash []byte) (Token, error)
	ListTokens(ctx context.Context) ([]Token, error)
	RevokeToken(ctx context.Context, name string) error
	TouchToken(ctx context.Context, id int64, at time.Time) error

	// Sessions.
	CreateSession(ctx context.Context, s Session) error
	SessionByHash(ctx context.Context, hash []byte) (Session, error)
	UpdateSession(ctx context.Context, s Session) error
	DeleteSession(ctx context.Context, hash []byte) error
	DeleteExpiredSessions(ctx context.Context, now time.Time) error

	// Close releases the database.
	Close() error
}
