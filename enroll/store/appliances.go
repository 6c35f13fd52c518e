package store

import (
	"context"
	"time"
)

// This file declares what the appliance API (enroll/server/appliance)
// needs from the store: paired appliances, pairing codes and each
// appliance's revision log of changes, and the nonces of signed requests.

// Appliance is a paired appliance: its identity keys and what it last
// reported.
type Appliance struct {
	// ID is random, set by the caller of PairAppliance; it never changes.
	ID string
	// Name is the friendly name, unique regardless of case.
	Name string
	// SignKey is the Ed25519 public key that signs its requests (32
	// bytes); unique among appliances.
	SignKey []byte
	// BoxKey is the X25519 public key offers are sealed to (32 bytes).
	BoxKey []byte
	// Paired is when it was paired.
	Paired time.Time
	// LastSeen is when it last synced; zero when never.
	LastSeen time.Time
	// Version is the software version it reported.
	Version string
	// Accounts is how many accounts it reported holding.
	Accounts int
	// Clock is its last clock report; Clock.At is zero when none.
	Clock ClockReport
	// Secrets is how it keeps its secrets, as its last sync said:
	// SecretsTPM, SecretsSoftware, or empty when it did not say.
	Secrets string
	// Rev is the latest revision of its change log; 0 while empty.
	Rev int64
	// Unpairing is set by UnpairAppliance: an admin unpaired it, and the
	// record stays until the appliance acknowledges the unpair change.
	Unpairing bool
	// Site is the site the appliance belongs to; empty for none.
	Site string
}

// ClockReport is an appliance's clock reading as the server received it.
type ClockReport struct {
	// ApplianceTime is the time the appliance's clock read.
	ApplianceTime time.Time
	// Bound is the appliance's error bound; zero when BoundUnknown.
	Bound time.Duration
	// BoundUnknown reports that the appliance's clock had no error bound:
	// it never synced. Such a report says nothing about how far off the
	// appliance may be.
	BoundUnknown bool
	// State is the clock state's name ("SYNCED", "HOLDOVER", ...).
	State string
	// Frequency is the appliance's timebase frequency error, in ppm.
	Frequency float64
	// Authenticated reports whether the appliance said its clock's last
	// update came only from NTS-authenticated time servers.
	Authenticated bool
	// Offset is the server's clock minus ApplianceTime on receipt.
	Offset time.Duration
	// At is the server's time of the report; zero when there is none.
	At time.Time
}

// ClockSample is one entry of an appliance's clock history: a clock
// report kept for the console's chart.
type ClockSample struct {
	// At is the report's server time, truncated to the minute (UTC).
	At time.Time
	// Offset is the server's clock minus the appliance's on receipt.
	Offset time.Duration
	// Bound is the appliance's error bound; zero when BoundUnknown.
	Bound time.Duration
	// BoundUnknown reports that the appliance's clock had no error bound
	// (it never synced): the chart leaves the sample out.
	BoundUnknown bool
	// State is the clock state's name ("SYNCED", "HOLDOVER", ...).
	State string
}

// knownBound is the bound to store: zero when unknown.
func (c ClockSample) knownBound() time.Duration {
	if c.BoundUnknown {
		return 0
	}
	return c.Bound
}

// knownBound is the bound to store: zero when unknown.
func (c ClockReport) knownBound() time.Duration {
	if c.BoundUnknown {
		return 0
	}
	return c.Bound
}

// ClockHistoryKeep is how long the janitor keeps clock samples.
const ClockHistoryKeep = 7 * 24 * time.Hour

// ApplianceSeen is what one sync tells the server about an appliance.
type ApplianceSeen struct {
	At       time.Time // becomes LastSeen
	Version  string
	Accounts int
	// Clock replaces the stored report unless Clock.At is zero.
	Clock ClockReport
	// Secrets replaces the stored mode: SecretsTPM, SecretsSoftware, or
	// empty when the appliance did not say (the mode becomes unknown).
	Secrets string
}

// An appliance's secrets modes, as ApplianceSeen.Secrets reports them (the
// values of the wire protocol's SyncQuery.Secrets).
const (
	// SecretsTPM: the vault key is sealed to a TPM, which computes codes.
	SecretsTPM = "tpm"
	// SecretsSoftware: the vault key is a file on the SD card; a copy of
	// the card copies every account.
	SecretsSoftware = "software"
)

// SyncRequest is one signed sync of an appliance, for SyncAppliance.
type SyncRequest struct {
	// SignKey is the Ed25519 public key that signed the request.
	SignKey []byte
	// KeyID, Nonce and NonceExpires are UseNonce's arguments.
	KeyID, Nonce string
	NonceExpires time.Time
	// Seen is what the sync reports; it is stored when SeenDue says so.
	Seen ApplianceSeen
	// SeenEvery is how stale the stored LastSeen may grow before a sync
	// that reports nothing new rewrites it (see SeenDue); 0 rewrites it
	// on every sync.
	SeenEvery time.Duration
	// ClockSlack is how far the clock report's offset or bound may move
	// before a sync rewrites it before SeenEvery (see SeenDue).
	ClockSlack time.Duration
	// Sample goes into the clock history unless Sample.At is zero.
	Sample ClockSample
	// After, Now and Limit are Changes' arguments.
	After int64
	Now   time.Time
	Limit int
}

// SyncResult is what SyncAppliance read.
type SyncResult struct {
	// Appliance is the appliance the key belongs to, as stored after the
	// sync.
	Appliance Appliance
	// Changes is what Changes returns.
	Changes []Change
	// SeenWritten reports whether Seen was stored.
	SeenWritten bool
}

// SeenDue reports whether a sync that reports s must be written over a,
// the appliance as stored: when every is not positive, when a was never
// seen, when a.LastSeen is every or more before s.At, when s says
// something a does not (version, accounts, secrets mode, or the clock's
// state or whether its time is authenticated), or when s's clock offset or bound is more than slack away from
// a's. Between two writes, LastSeen is at most every older than the
// appliance's last sync, and the stored offset and bound within slack of
// its last report.
func SeenDue(a Appliance, s ApplianceSeen, every, slack time.Duration) bool {
	switch {
	case every <= 0, a.LastSeen.IsZero(), !s.At.Before(a.LastSeen.Add(every)):
		return true
	case s.Version != a.Version, s.Accounts != a.Accounts, s.Secrets != a.Secrets:
		return true
	}
	c, was := s.Clock, a.Clock
	if c.At.IsZero() {
		return false
	}
	return was.At.IsZero() || c.State != was.State || c.BoundUnknown != was.BoundUnknown || c.Authenticated != was.Authenticated ||
		(c.Offset-was.Offset).Abs() > slack || (c.knownBound()-was.knownBound()).Abs() > slack
}

// PairingCode is a one-time code an unpaired appliance shows, to be typed
// in the console.
type PairingCode struct {
	// Code is unique among stored codes.
	Code    string
	SignKey []byte // Ed25519 public key of the appliance
	BoxKey  []byte // X25519 public key of the appliance
	Version string
	Created time.Time
	Expires time.Time
}

// ChangeKind says what a change asks of the appliance.
type ChangeKind string

// Kinds of change.
const (
	ChangeOffer    ChangeKind = "offer"    // a registration sent to the appliance
	ChangeCancel   ChangeKind = "cancel"   // the offer was withdrawn
	ChangeExpire   ChangeKind = "expire"   // the registration expired unconfirmed
	ChangeDelete   ChangeKind = "delete"   // the MFA device was deleted
	ChangeRename   ChangeKind = "rename"   // the MFA device was renamed
	ChangeActivate ChangeKind = "activate" // the registration was confirmed
	ChangeUnpair   ChangeKind = "unpair"   // the appliance was unpaired
)

// ChangeState is where a change stands.
type ChangeState string

// States of a change. Offers go from pending to accepted, rejected or
// cancelled; other changes from pending to acked.
const (
	ChangePending   ChangeState = "pending"
	ChangeAccepted  ChangeState = "accepted"
	ChangeRejected  ChangeState = "rejected"
	ChangeAcked     ChangeState = "acked"
	ChangeCancelled ChangeState = "cancelled"
)

// Change is one entry of an appliance's revision log.
type Change struct {
	ApplianceID string
	// Rev is set by AppendChange: the appliance's previous Rev + 1.
	Rev  int64
	Kind ChangeKind
	// DeviceUID is the MFA device's UID; empty for ChangeUnpair.
	DeviceUID string
	// Payload is the kind's JSON, opaque to the store. An offer's holds
	// its secret sealed to the appliance's box key, never in the clear.
	Payload []byte
	State   ChangeState
	Created time.Time
	// Expires is when an offer lapses; zero for other kinds.
	Expires time.Time
	// Answered is when it left ChangePending; zero while pending.
	Answered time.Time
}

// Adoption is one MFA device AdoptDevices adopted.
type Adoption struct {
	UID string
	// New reports that this call recorded the appliance as its holder;
	// false when it already was.
	New bool
}

// ApplianceStore is the persistence of the appliance API. Implementations
// are safe for concurrent use; times and errors follow Store's rules.
type ApplianceStore interface {
	// CreatePairingCode stores c; ErrConflict when c.Code is already
	// stored (the caller draws another code).
	CreatePairingCode(ctx context.Context, c PairingCode) error
	// PairingCodeByKey returns the code of signKey with the latest
	// Expires, if that is after now; ErrNotFound otherwise.
	PairingCodeByKey(ctx context.Context, signKey []byte, now time.Time) (PairingCode, error)
	// PairAppliance, in one transaction, finds the pairing code code whose
	// Expires is after now (ErrNotFound otherwise), creates an appliance
	// with a.ID, a.Name and a.Paired and the code's SignKey, BoxKey and
	// Version (filled into *a; Rev 0), and deletes every pairing code of
	// that SignKey. ErrConflict, changing nothing, when the name is taken
	// (regardless of case) or the key is already paired.
	PairAppliance(ctx context.Context, code string, now time.Time, a *Appliance) error
	// DeleteExpiredPairingCodes removes codes whose Expires is at or
	// before now and returns how many.
	DeleteExpiredPairingCodes(ctx context.Context, now time.Time) (int, error)

	// Appliance returns an appliance by ID; ApplianceByKey by its SignKey.
	// ErrNotFound when missing.
	Appliance(ctx context.Context, id string) (Appliance, error)
	ApplianceByKey(ctx context.Context, signKey []byte) (Appliance, error)
	// Appliances returns every appliance, by name regardless of case.
	Appliances(ctx context.Context) ([]Appliance, error)
	// RenameAppliance sets the friendly name; ErrNotFound, ErrConflict.
	RenameAppliance(ctx context.Context, id, name string) error
	// SetApplianceSite sets the site an appliance belongs to (empty for
	// none); ErrNotFound.
	SetApplianceSite(ctx context.Context, id, site string) error
	// SeenAppliance records a sync: LastSeen = s.At, Version, Accounts,
	// Secrets, and Clock unless s.Clock.At is zero. ErrNotFound when
	// missing; an error naming the mode when s.Secrets is not one of
	// "", SecretsTPM and SecretsSoftware.
	SeenAppliance(ctx context.Context, id string, s ApplianceSeen) error
	// UnpairAppliance, in one transaction, sets Unpairing, cancels the
	// appliance's pending offers (State cancelled, Answered at) and
	// appends a ChangeUnpair (as AppendChange does), which it returns.
	// When the appliance is already Unpairing it changes nothing and
	// returns the existing unpair change. ErrNotFound when missing.
	UnpairAppliance(ctx context.Context, id string, at time.Time) (Change, error)
	// DeleteAppliance removes an appliance and its changes; ErrNotFound
	// when missing.
	DeleteAppliance(ctx context.Context, id string) error

	// AppendClockSample stores c in the appliance's clock history as the
	// sample of c.At's minute (c.At is truncated to the minute) and
	// reports whether it did: when that minute already has a sample,
	// nothing changes and it returns false. ErrNotFound when the
	// appliance is missing. Samples go with their appliance.
	AppendClockSample(ctx context.Context, applianceID string, c ClockSample) (bool, error)
	// ClockSamples returns the appliance's samples with At at or after
	// since, oldest first (none when the appliance is missing).
	ClockSamples(ctx context.Context, applianceID string, since time.Time) ([]ClockSample, error)
	// DeleteClockSamples removes every appliance's samples with At before
	// before and returns how many.
	DeleteClockSamples(ctx context.Context, before time.Time) (int, error)

	// AppendChange, in one transaction, sets c.Rev to the appliance's Rev
	// + 1 and stores that as the appliance's Rev, sets c.State pending
	// and c.Answered zero, and stores c (c.Created as given). When c.Kind
	// is cancel, expire or delete, the appliance's pending offers for
	// c.DeviceUID become cancelled (Answered c.Created) in the same
	// transaction. ErrNotFound when the appliance is missing, ErrStale
	// when it is Unpairing.
	AppendChange(ctx context.Context, c *Change) error
	// Changes returns, by Rev, the appliance's pending offers with
	// Rev <= after and Expires after now, followed by its changes with
	// Rev > after, at most limit of the latter (limit <= 0: all).
	Changes(ctx context.Context, applianceID string, after int64, now time.Time, limit int) ([]Change, error)
	// Change returns one change; ErrNotFound when missing.
	Change(ctx context.Context, applianceID string, rev int64) (Change, error)
	// AnswerChange moves the pending change (applianceID, rev) to state
	// and sets Answered = at; answering an offer also clears its Payload.
	// If the change is already in state, nothing changes. It returns the
	// change as stored afterwards; when the change is in another state it
	// returns it unchanged with ErrStale. ErrNotFound when missing.
	AnswerChange(ctx context.Context, applianceID string, rev int64, state ChangeState, at time.Time) (Change, error)
	// OffersByDevice returns every ChangeOffer for deviceUID, whatever
	// the appliance, newest (by Created, then Rev) first.
	OffersByDevice(ctx context.Context, deviceUID string) ([]Change, error)
	// DevicesOnAppliance returns the MFA devices the server placed on the
	// appliance: those whose offer it accepted, not followed by a cancel,
	// expire or delete there; by user ID, then ID.
	DevicesOnAppliance(ctx context.Context, applianceID string) ([]Device, error)
	// AdoptDevices, in one transaction, records the appliance as the
	// holder of those MFA devices of uids it reports holding that the
	// server can hand back to it after a new pairing: each that exists,
	// is active, and is held by no other appliance (no accepted offer
	// there not followed by a cancel, expire or delete). A device the
	// appliance already holds (as DevicesOnAppliance says) is adopted as
	// it is; for each other one it appends an offer already accepted
	// (Rev as AppendChange sets it, State accepted, Created and Answered
	// at, no payload), which DevicesOnAppliance then lists. It returns the
	// adopted devices, in uids' order; the appliance wipes the rest.
	// ErrNotFound when the appliance is missing, ErrStale when it is
	// Unpairing.
	AdoptDevices(ctx context.Context, applianceID string, uids []string, at time.Time) ([]Adoption, error)
	// DeleteAnsweredChanges removes changes answered before before and
	// returns how many; appliances keep their Rev. An accepted offer is
	// kept (it records which appliance holds the account) until a later
	// cancel, expire or delete of its MFA device on that appliance.
	DeleteAnsweredChanges(ctx context.Context, before time.Time) (int, error)

	// SyncAppliance runs what one signed sync needs of the store in one
	// transaction: it finds the appliance by r.SignKey (ErrNotFound,
	// nothing written, when none has it), records r's nonce as UseNonce
	// does (ErrConflict, nothing written, when it is a replay), records
	// r.Seen as SeenAppliance does when SeenDue(appliance, r.Seen,
	// r.SeenEvery) and appends r.Sample unless its At is zero (as
	// AppendClockSample does), then reads the changes as Changes(id,
	// r.After, r.Now, r.Limit) does. Of several concurrent uses of one
	// nonce, across every server sharing the store, exactly one succeeds.
	SyncAppliance(ctx context.Context, r SyncRequest) (SyncResult, error)

	// Replacements of an appliance by a spare; see replacements.go.
	ReplacementStore

	// UseNonce records that the signed request with this key id and
	// nonce was accepted, remembering it until expires. ErrConflict when
	// the pair is already recorded: the request is a replay. Of several
	// concurrent uses of one pair, across every server sharing the
	// store, exactly one succeeds.
	UseNonce(ctx context.Context, keyID, nonce string, expires time.Time) error
	// DeleteExpiredNonces removes nonces whose expires is at or before
	// now and returns how many.
	DeleteExpiredNonces(ctx context.Context, now time.Time) (int, error)
}
