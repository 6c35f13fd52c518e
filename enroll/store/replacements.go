package store

import (
	"context"
	"time"
)

// This file declares what replacing an appliance needs of the store: the
// replacement (the old appliance, the spare, where it stands) and, per
// account the old appliance held, whether the spare has stored it. The
// accounts travel as takeovers: offers on the spare's change log whose
// payload says they take an account over (see enroll/server/appliance),
// so that once accepted they record the spare as the holder exactly as an
// accepted offer does.

// ReplacementState is where a replacement stands.
type ReplacementState string

// States of a replacement.
const (
	// ReplacementWaiting: the takeovers are queued on the spare, which
	// has not answered them all.
	ReplacementWaiting ReplacementState = "waiting"
	// ReplacementDeclined: BACK on the spare; nothing more moves until
	// the replacement is resumed.
	ReplacementDeclined ReplacementState = "declined"
	// ReplacementDone: every account is on the spare, and the old
	// appliance was told to wipe.
	ReplacementDone ReplacementState = "done"
)

// Replacement is an appliance being replaced by a paired spare.
type Replacement struct {
	// ID is random, set by the caller of CreateReplacement.
	ID string
	// OldID and OldName are the appliance replaced, as named when the
	// replacement began; SpareID and SpareName the spare.
	OldID, OldName     string
	SpareID, SpareName string
	State              ReplacementState
	// NotMoved lists, one line each, what the old appliance holds that
	// does not move: offers, pending registrations, local accounts.
	NotMoved []string
	Created  time.Time
	// Updated is when State last changed.
	Updated time.Time
	// Accounts are the accounts that move, by DeviceUID.
	Accounts []ReplacementAccount
}

// Open reports whether the replacement is not done: waiting or declined.
func (r Replacement) Open() bool { return r.State != ReplacementDone }

// Moved returns how many accounts are on the spare.
func (r Replacement) Moved() int {
	n := 0
	for _, a := range r.Accounts {
		if a.Moved() {
			n++
		}
	}
	return n
}

// ReplacementAccount is one account of a replacement.
type ReplacementAccount struct {
	// DeviceUID is the MFA device's UID.
	DeviceUID string
	// Rev is the spare's change that takes it over; 0 before one was
	// queued.
	Rev int64
	// MovedAt is when the spare confirmed storing it; zero until then.
	MovedAt time.Time
}

// Moved reports whether the spare confirmed storing the account.
func (a ReplacementAccount) Moved() bool { return !a.MovedAt.IsZero() }

// AccountMove is what MoveAccount did.
type AccountMove struct {
	// Moved reports that this call recorded the account as moved; false
	// when it already was.
	Moved bool
	// Done reports that this call moved the last account: the
	// replacement is done and the old appliance unpaired with a wipe.
	Done bool
	// Left is how many accounts are still to move.
	Left int
	// Wipe is the old appliance's wipe change when Done (its Rev is 0
	// when the old appliance was already gone).
	Wipe Change
}

// ReplacementStore is the persistence of appliance replacements.
type ReplacementStore interface {
	// CreateReplacement stores r (its Accounts with Rev 0, not moved;
	// State waiting) in one transaction. ErrConflict, storing nothing,
	// when an open replacement already involves r.OldID or r.SpareID, as
	// the old appliance or the spare.
	CreateReplacement(ctx context.Context, r Replacement) error
	// Replacement returns one replacement with its accounts; ErrNotFound
	// when missing.
	Replacement(ctx context.Context, id string) (Replacement, error)
	// ReplacementsOf returns the replacements in which applianceID is the
	// old appliance or the spare, newest first, with their accounts.
	ReplacementsOf(ctx context.Context, applianceID string) ([]Replacement, error)
	// SetReplacementState moves a replacement that is not done to state
	// (waiting or declined) at at; ErrNotFound when missing, ErrStale
	// when it is done.
	SetReplacementState(ctx context.Context, id string, state ReplacementState, at time.Time) error
	// SetTakeoverRev records rev as the spare's change taking over the
	// account deviceUID. ErrNotFound when the account is not in the
	// replacement.
	SetTakeoverRev(ctx context.Context, id, deviceUID string, rev int64) error
	// MoveAccount, in one transaction, records that the spare stored the
	// account deviceUID: unless it was already moved, it sets MovedAt and
	// appends a ChangeDelete of the device to the old appliance (when it
	// is still paired and not unpairing), so that it no longer holds it.
	// When that was the last account, the replacement becomes done and
	// the old appliance is unpaired as UnpairAppliance does, with an
	// unpair change whose Payload is wipe (the appliance wipes its whole
	// vault). Repeating it changes nothing. ErrNotFound when the account
	// is not in the replacement.
	MoveAccount(ctx context.Context, id, deviceUID string, wipe []byte, at time.Time) (AccountMove, error)
	// DropAccount, in one transaction, removes the account deviceUID from
	// the replacement when it is not moved yet (its MFA device was
	// deleted: there is nothing left to move) and, when that leaves no
	// account to move, finishes the replacement as MoveAccount does. The
	// result's Moved is false; Done reports the finish. Repeating it, or
	// dropping an account moved already, changes nothing. ErrNotFound
	// when the replacement is missing.
	DropAccount(ctx context.Context, id, deviceUID string, wipe []byte, at time.Time) (AccountMove, error)
}
