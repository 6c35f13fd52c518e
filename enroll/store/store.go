// Package store persists the registration server's state: users, MFA
// devices, settings, audit events, API tokens and sessions. Two
// implementations, SQLite (the embedded default) and PostgreSQL, each the
// whole of Store; the conformance suite in storetest runs against both.
// The server's parts do not take Store: each defines the role it needs
// (core.Store, console.Store, api.Store, api.TokenStore,
// appliance.Store) and the SQL stores satisfy them all.
//
// Secrets of MFA devices are stored encrypted (see Sealer); the store never
// sees a TOTP secret in the clear.
package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
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
	// KindHardware is an imported hardware token assigned to a user
	// (see HardwareToken).
	KindHardware DeviceKind = "hardware"
)

// valid reports whether k is one of the kinds.
func (k DeviceKind) valid() bool {
	return k == KindAppliance || k == KindAuthenticatorApp || k == KindHardware
}

// DeviceStatus is the state of a registration.
type DeviceStatus string

// Registration states: pending until a correct code is typed, then active.
const (
	StatusPending DeviceStatus = "pending"
	StatusActive  DeviceStatus = "active"
)

// Device is an MFA device: a user's registered TOTP credential.
type Device struct {
	ID     int64
	UserID int64
	// UID is a random identifier that never changes, set by CreateDevice
	// when empty (see NewDeviceUID). The secret's ciphertext is bound to
	// UserID and UID (see SecretAAD), so it cannot be moved to another row.
	UID          string
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
	// FailCount counts failed codes; it loses one per Lockout.Leak from
	// FailAt (see Failures), and only an unlock, a resync or a new
	// registration clears it: an accepted code does not.
	FailCount   int
	FailAt      time.Time // when FailCount last leaked or began; zero when it is 0
	LockedUntil time.Time // zero when not locked; Indefinitely until unlocked
	// Lockouts is the lockout level: how many whole lockout thresholds
	// FailCount held at the last failure. Each level doubles the lock.
	Lockouts int
	// OutOfSync marks a device registered with a late code: a resync
	// clears it.
	OutOfSync bool
	// DriftVotes counts verifies in a row matched at one side of the
	// learned drift: positive later, negative earlier.
	DriftVotes int
	// AheadSteps are the steps used ahead of the server's clock (by a
	// device whose clock runs fast), each one apart from LastUsedStep, in
	// ascending order; none when empty. Only the steps themselves are
	// used: a step between two of them is not, so a device whose clock is
	// set right again is refused only the codes it really used ahead.
	// FoldAheadSteps moves them into LastUsedStep once the server's clock
	// reaches them.
	AheadSteps []int64
	// HOTP marks an event token (RFC 4226): its codes come from Counter,
	// not from the time, and the step fields above are unused.
	HOTP bool
	// Counter is an HOTP device's next counter value: the lowest one a
	// code may still come from. Every accepted code moves it past the
	// code's own (see AdvanceCounter).
	Counter int64
}

// Indefinitely is the LockedUntil of a device locked until someone
// unlocks it: no lock time runs out.
var Indefinitely = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)

// LockedIndefinitely reports whether d stays locked until unlocked.
func (d Device) LockedIndefinitely() bool { return !d.LockedUntil.Before(Indefinitely) }

// Used reports whether step was already accepted for d: at or below
// LastUsedStep, or one of the steps used ahead.
func (d Device) Used(step int64) bool {
	return step <= d.LastUsedStep || slices.Contains(d.AheadSteps, step)
}

// ExpiredRegistrationMemory is how long a registration removed by
// DeleteExpiredPending is remembered, so that its pages say "expired".
const ExpiredRegistrationMemory = 7 * 24 * time.Hour

// NewDeviceUID returns a random identifier for Device.UID: 32 hex digits.
func NewDeviceUID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails; see crypto/rand
	return hex.EncodeToString(b[:])
}

// SecretAAD returns the associated data that binds the sealed secret to
// this MFA device: its user and its UID, which never change (a rename
// does not touch it). Use it with Sealer.Seal and Sealer.Open, or let
// Sealer.SealDevice and Sealer.OpenDevice do so.
func (d Device) SecretAAD() []byte {
	return fmt.Appendf(nil, "totpbox mfa-device secret v1\x00user:%d\x00uid:%s", d.UserID, d.UID)
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
	// Role is what the token may do: "admin", "helpdesk", "auditor" or
	// "verify" (enroll/server/core.Role); empty is stored as "admin",
	// what every token could do before tokens had roles.
	Role string
	// Scope is what the token reaches: "" the admin API (/api/v1),
	// ScopeSCIM only SCIM provisioning (/scim/v2).
	Scope string
}

// ScopeSCIM is the Scope of a token that reaches only /scim/v2.
const ScopeSCIM = "scim"

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
	// Role is the role the sign-in gave (from the identity provider's
	// groups); empty means the user's admin flag decides.
	Role string
	// Sites limits the session to the appliances of these sites; empty
	// means every site. A site name holds no comma.
	Sites []string
}

// UseStep is the outcome of a verify to record with one conditional update.
type UseStep struct {
	DeviceID int64
	// Step is the matched step; the update succeeds only while the stored
	// LastUsedStep is below it, so one code is accepted at most once.
	Step  int64
	Drift int64
	At    time.Time
	// DriftVotes is the device's DriftVotes after this use.
	DriftVotes int
	// Ahead says Step is ahead of the server's clock (beyond its step
	// plus the window): it is added to AheadSteps, never recorded in
	// LastUsedStep, so LastUsedStep never runs ahead of the server.
	Ahead bool
	// OutOfSync is the mark ActivateDevice sets (a late code).
	OutOfSync bool
	// Kind, for ActivateDevice only, is the kind the MFA device becomes
	// (what happened: an appliance accepted its offer, or not); empty
	// keeps the kind it has.
	Kind DeviceKind
}

// Lockout is how failed codes lock an MFA device.
type Lockout struct {
	// Threshold is how many failed codes that still count lock the
	// device; each further Threshold locks it again, one level up.
	Threshold int
	// Base is how long the first lock lasts; each further level doubles
	// it (at most MaxLock).
	Base time.Duration
	// MaxLockouts is the lockout level that lasts until
	// someone unlocks the device (LockedUntil Indefinitely); 0: never.
	MaxLockouts int
	// Leak is how long a failure counts: the fail count loses one per
	// Leak since the device's FailAt; 0: failures never leak.
	Leak time.Duration
}

// Failures returns d's fail count at now, after one failure leaked away
// per leak since d.FailAt, and the time the rest leaks from.
func (d Device) Failures(now time.Time, leak time.Duration) (int, time.Time) {
	n, at := d.FailCount, d.FailAt
	if n <= 0 || leak <= 0 || at.IsZero() || !now.After(at) {
		return n, at
	}
	gone := now.Sub(at) / leak
	if gone >= time.Duration(n) {
		return 0, time.Time{}
	}
	return n - int(gone), at.Add(gone * leak)
}

// fail counts one more failure on d, not locked at now, by rule l: the
// count leaks first, and the failure that takes it to a new multiple of
// the threshold locks the device for l.LockFor(the multiple). A lock that
// ran out keeps its count, so the next lock comes a threshold later.
func (l Lockout) fail(d Device, now time.Time) Failure {
	n, at := d.Failures(now, l.Leak)
	if at.IsZero() {
		at = now
	}
	f := Failure{Count: n + 1, FailAt: at}
	if l.Threshold <= 0 {
		return f
	}
	f.Lockouts = f.Count / l.Threshold
	if f.Lockouts > n/l.Threshold {
		f.Locked = true
		if d, forever := l.LockFor(f.Lockouts); forever {
			f.LockedUntil = Indefinitely
		} else {
			f.LockedUntil = micro(now.Add(d))
		}
	}
	return f
}

// MaxLock bounds one timed lock, however many lockouts came before.
const MaxLock = 365 * 24 * time.Hour

// LockFor returns how long the lockout of level n lasts (n >= 1), and
// whether it lasts until someone unlocks the device.
func (l Lockout) LockFor(n int) (time.Duration, bool) {
	if l.MaxLockouts > 0 && n >= l.MaxLockouts {
		return 0, true
	}
	d := l.Base
	for i := 1; i < n && d < MaxLock; i++ {
		d *= 2
	}
	return min(d, MaxLock), false
}

// Failure is what RecordFailure did.
type Failure struct {
	// WasLocked: the device was already locked at the time given; the
	// failure was not counted.
	WasLocked bool
	// Locked: this failure locked the device.
	Locked bool
	// Count and Lockouts are the device's counts afterwards, and FailAt
	// the time the count leaks from.
	Count, Lockouts int
	FailAt          time.Time
	// LockedUntil is the device's lock afterwards (zero when none).
	LockedUntil time.Time
}

// Store is the server's persistence. Implementations are safe for
// concurrent use. Times come back in UTC, truncated to microseconds; the
// zero time means unset. Errors wrap ErrNotFound, ErrConflict or ErrStale
// where those apply and are one line naming the operation.
type Store interface {
	// SealedKeys lists the master key ids sealed secrets use, so a server
	// can refuse to start without them.
	SealedKeys
	// Directory links users to their identity source; Leases let one
	// replica at a time run a periodic job.
	Directory
	Leases
	// SCIM keeps what SCIM clients provision beside users.
	SCIM

	// Users. Usernames are unique regardless of case, and UserByName
	// ignores case too.
	CreateUser(ctx context.Context, u *User) error // sets ID and Created (when zero); ErrConflict on username
	UserByName(ctx context.Context, username string) (User, error)
	UserByID(ctx context.Context, id int64) (User, error)
	// ListUsers returns users whose username, display name or email contains
	// query (case-insensitive), ordered by username; empty query lists all.
	// A limit <= 0 means no limit.
	ListUsers(ctx context.Context, query string, limit int) ([]User, error)
	// UpdateUser stores every field but ID and Created; ErrNotFound,
	// ErrConflict when the new username is taken.
	UpdateUser(ctx context.Context, u User) error
	// CountAdmins counts admins that are not disabled.
	CountAdmins(ctx context.Context) (int, error)

	// MFA devices. Friendly names are unique per user regardless of case.
	// CreateDevice sets ID, Created (when zero) and UID (when empty);
	// ErrConflict on the friendly name, ErrNotFound when the user is missing.
	CreateDevice(ctx context.Context, d *Device) error
	Device(ctx context.Context, id int64) (Device, error)
	// DevicesByUser returns a user's MFA devices, oldest first.
	DevicesByUser(ctx context.Context, userID int64) ([]Device, error)
	// UserDevices is UserByName and DevicesByUser in one read: the user
	// and their MFA devices from one snapshot. ErrNotFound when there is
	// no such user.
	UserDevices(ctx context.Context, username string) (User, []Device, error)
	RenameDevice(ctx context.Context, id int64, name string) error // ErrNotFound, ErrConflict
	DeleteDevice(ctx context.Context, id int64) error              // ErrNotFound
	// ActivateDevice turns a pending device active if it is still pending
	// and unexpired at u.At (ExpiresAt zero or after u.At) and its user
	// is not disabled: Registered and LastUsed become u.At, LastUsedStep
	// u.Step, DriftSteps u.Drift, OutOfSync u.OutOfSync, Kind u.Kind
	// (unless empty), ExpiresAt zero, FailCount 0. ErrStale otherwise;
	// ErrNotFound when there is no such device.
	ActivateDevice(ctx context.Context, id int64, u UseStep) error
	// RecordUse accepts a code with one conditional update, only while
	// the device is active, u.Step is not used (see Device.Used), the
	// device is not locked at u.At (LockedUntil zero or <= u.At) and its
	// user is not disabled: all in the same statement, so a change made
	// by another server process takes effect at once. It moves
	// LastUsedStep to u.Step (or, when u.Ahead, adds u.Step to
	// AheadSteps), and sets drift, drift votes and last-used time. It leaves
	// the fail count and lockout level as they are: they fall only with
	// time (see Device.Failures), so the real user's codes give an
	// attacker no fresh guesses. ErrStale when the condition
	// fails (a replay, a concurrent verify, a pending or locked device, a
	// disabled user); ErrNotFound when there is no such device.
	RecordUse(ctx context.Context, u UseStep) error
	// RecordUses records several uses in one transaction (group commit;
	// see UseBatcher): errs[i] is what RecordUse would return for us[i],
	// the uses applied one after another, in order of device ID and in
	// the given order for one device. When the transaction fails, every
	// use gets its error and none is recorded.
	RecordUses(ctx context.Context, us []UseStep) (errs []error)
	// RecordFailure counts a failed code at now, in one transaction. A
	// device locked at now is left as it is (WasLocked). The count first
	// leaks (see Device.Failures); the failure that takes it to a new
	// multiple k of rule.Threshold locks the device for rule.LockFor(k),
	// and Lockouts is the count's whole multiples of the threshold. A
	// lock that ran out keeps its count.
	RecordFailure(ctx context.Context, id int64, rule Lockout, now time.Time) (Failure, error)
	// SetDrift stores a drift learned by resync, whose codes are the steps
	// u.Step-1 and u.Step: only while neither is used (see Device.Used),
	// else ErrStale. It records them as RecordUse does (LastUsedStep, or
	// both in AheadSteps when u.Ahead), sets DriftSteps = u.Drift and
	// LastUsed = u.At, and clears the drift votes, the out-of-sync mark,
	// the fail count, lockout count and lock. ErrNotFound when there is no
	// such device.
	SetDrift(ctx context.Context, u UseStep) error
	// FoldAheadSteps moves the device's AheadSteps at or below upTo (the
	// server's step plus the window: steps its clock has reached) into
	// LastUsedStep, which becomes the highest of them if that is higher,
	// in one transaction; the steps above upTo stay. Nothing changes when
	// none is at or below upTo. ErrNotFound when there is no such device.
	FoldAheadSteps(ctx context.Context, id int64, upTo int64) error
	// UnlockDevice clears the fail count, lockout count and lock of a
	// device while its lock is still lockedUntil, the one the caller saw
	// (zero: none), so a stale reader cannot undo a lock just set:
	// ErrStale otherwise, ErrNotFound when there is no such device.
	UnlockDevice(ctx context.Context, id int64, lockedUntil time.Time) error
	// ClearExpiredLockout clears the lock of a device whose lock has run
	// out at now (LockedUntil set and <= now), keeping its fail count and
	// lockout level; ErrStale when it is not so locked.
	ClearExpiredLockout(ctx context.Context, id int64, now time.Time) error
	// ClearExpiredLockouts clears the lock of every device whose
	// LockedUntil is set and <= now, keeping their fail counts and lockout
	// levels, and returns those devices as they are after the reset, by ID.
	ClearExpiredLockouts(ctx context.Context, now time.Time) ([]Device, error)
	// DeleteExpiredPending removes pending devices whose ExpiresAt is before
	// now and returns them, by ID. In the same transaction it remembers
	// each (for ExpiredRegistration) and forgets those that expired more
	// than ExpiredRegistrationMemory before now.
	DeleteExpiredPending(ctx context.Context, now time.Time) ([]Device, error)
	// ExpiredRegistration returns a registration DeleteExpiredPending
	// removed: ID, UserID, Name, ExpiresAt and Status pending, nothing
	// else (no secret is kept). ErrNotFound when there is none.
	ExpiredRegistration(ctx context.Context, id int64) (Device, error)
	// CountPending counts pending devices, expired or not.
	CountPending(ctx context.Context) (int, error)

	// Settings, as strings by name; see the server for names and defaults.
	// SetSetting creates or replaces one.
	Settings(ctx context.Context) (map[string]string, error)
	SetSetting(ctx context.Context, name, value string) error

	// Audit appends an event (Time now when zero). AuditEvents returns up
	// to limit events (all when limit <= 0), newest first; before > 0
	// returns only events with a lower ID, for the next page.
	Audit(ctx context.Context, e AuditEvent) error
	AuditEvents(ctx context.Context, limit int, before int64) ([]AuditEvent, error)

	// API tokens. A name is held by one unrevoked token at a time
	// (ErrConflict); a revoked token frees its name. TokenByHash also
	// returns revoked tokens (Revoked true): the caller refuses them.
	CreateToken(ctx context.Context, t *Token) error // sets ID and Created (when zero)
	TokenByHash(ctx context.Context, hash []byte) (Token, error)
	ListTokens(ctx context.Context) ([]Token, error)    // revoked too, oldest first
	RevokeToken(ctx context.Context, name string) error // ErrNotFound when no unrevoked token has name
	TouchToken(ctx context.Context, id int64, at time.Time) error

	// Sessions. SessionByHash also returns expired sessions: the caller
	// checks ExpiresAt. UpdateSession stores UserID, ExpiresAt, CSRF,
	// MFAPending, Role and Sites; it and DeleteSession return ErrNotFound when missing.
	CreateSession(ctx context.Context, s Session) error // ErrConflict on hash, ErrNotFound when the user is missing
	SessionByHash(ctx context.Context, hash []byte) (Session, error)
	UpdateSession(ctx context.Context, s Session) error
	DeleteSession(ctx context.Context, hash []byte) error
	// DeleteUserSessions removes every session of a user (when disabled
	// or when the password changes).
	DeleteUserSessions(ctx context.Context, userID int64) error
	DeleteExpiredSessions(ctx context.Context, now time.Time) error

	// Appliances, pairing codes and their change logs; see appliances.go.
	ApplianceStore

	// Imported hardware tokens and HOTP counters; see hwtokens.go.
	HardwareTokens

	// Daily verify counts per user; see verifydaily.go.
	VerifyDaily

	// The audit cursor, webhook outbox and appliance alerts; see
	// events.go.
	EventStore

	// Atomic runs fn in one transaction that every call fn makes with
	// its context joins; see atomic.go. A change and its audit and
	// outbox rows are written so.
	Atomic(ctx context.Context, fn func(ctx context.Context) error) error

	// Ping reports whether the database answers, for readiness checks.
	Ping(ctx context.Context) error

	// Close releases the database.
	Close() error
}
