// Package proto is the wire protocol between an appliance and the
// registration server: the JSON messages of the appliance API, the request
// signing scheme, and the sealing of offer secrets to an appliance.
//
// Every appliance request is signed with the appliance's Ed25519 identity
// key (see Sign and Verifier). The server answers only keys it has paired,
// except for the pairing endpoints, where the request proves possession of
// the key it asks a pairing code for.
//
// The endpoints, all under PathPrefix:
//
//	POST pairing            ask for a pairing code (PairingRequest → Pairing)
//	GET  pairing?wait=S     pairing status, held up to S seconds until paired (→ Pairing)
//	GET  {id}/changes?...   changes after a revision, held up to 60 s (SyncQuery → Changes)
//	POST {id}/ack           acknowledge applied changes and answer offers (AckRequest → AckResponse)
//	POST {id}/held          after a new pairing, reconcile the accounts the server placed (HeldRequest → HeldResponse)
//
// Errors come back as an Error body with a non-2xx status.
package proto

import (
	"fmt"
	"time"
)

// PathPrefix is where the appliance API lives on the server.
const PathPrefix = "/api/v1/appliance/"

// PairingPath is the path of the pairing endpoints.
const PairingPath = PathPrefix + "pairing"

// ChangesPath returns the path of the sync endpoint of appliance id.
func ChangesPath(id string) string { return PathPrefix + id + "/changes" }

// AckPath returns the path of the ack endpoint of appliance id.
func AckPath(id string) string { return PathPrefix + id + "/ack" }

// HeldPath returns the path of the reconcile endpoint of appliance id.
func HeldPath(id string) string { return PathPrefix + id + "/held" }

// MaxBody is the largest request body the server reads.
const MaxBody = 64 << 10

// MaxWait is the longest the server holds a long-poll.
const MaxWait = 60 * time.Second

// PairingRequest asks the server for a pairing code for the signing key.
type PairingRequest struct {
	// BoxKey is the appliance's X25519 public key, to which the server
	// seals offer secrets (32 bytes).
	BoxKey []byte `json:"box_key"`
	// Version is the appliance's software version.
	Version string `json:"version"`
}

// Pairing states.
const (
	// PairingNone: the key has no live pairing code and is not paired;
	// ask for a code.
	PairingNone = "none"
	// PairingWaiting: a code was issued and waits to be typed in the
	// console.
	PairingWaiting = "waiting"
	// PairingPaired: the key is paired; ApplianceID and Name are set.
	PairingPaired = "paired"
)

// Pairing is the pairing state of a key.
type Pairing struct {
	// State is PairingNone, PairingWaiting or PairingPaired.
	State string `json:"state"`
	// Code is the pairing code to show while waiting: CodeLen characters
	// of CodeAlphabet.
	Code string `json:"code,omitempty"`
	// ExpiresAt is when Code stops working.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	// ApplianceID and Name are set once paired.
	ApplianceID string `json:"appliance_id,omitempty"`
	Name        string `json:"name,omitempty"`
}

// CodeAlphabet holds the characters of pairing codes: digits and capitals
// without the ones people confuse (0 O, 1 I L).
const CodeAlphabet = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"

// CodeLen is the length of a pairing code.
const CodeLen = 8

// Change kinds.
const (
	// KindOffer: a pending registration for this appliance; answer it with
	// an Ack whose Result is ResultAccepted or ResultRejected.
	KindOffer = "offer"
	// KindCancel: the offer for DeviceID was withdrawn.
	KindCancel = "cancel"
	// KindExpire: the registration of DeviceID expired unconfirmed.
	KindExpire = "expire"
	// KindDelete: the MFA device DeviceID was deleted.
	KindDelete = "delete"
	// KindRename: the MFA device DeviceID was renamed to Name.
	KindRename = "rename"
	// KindActivate: the registration of DeviceID was confirmed.
	KindActivate = "activate"
	// KindUnpair: the appliance was unpaired; it wipes every account the
	// server delivered.
	KindUnpair = "unpair"
	// KindTakeover: an active account of another appliance this one
	// replaces (see Change.Batch); answer it with an Ack whose Result is
	// ResultAccepted once the account is in the vault, or ResultRejected.
	KindTakeover = "takeover"
	// KindWipe: this appliance was replaced by another; it wipes its
	// whole vault, local accounts included, acknowledges, and waits to be
	// paired again.
	KindWipe = "wipe"
)

// Change states as the server records them.
const (
	StatePending   = "pending"   // not yet answered or acknowledged
	StateAccepted  = "accepted"  // an offer taken on the appliance
	StateRejected  = "rejected"  // an offer refused on the appliance
	StateAcked     = "acked"     // a change other than an offer, applied
	StateCancelled = "cancelled" // an offer withdrawn before it was answered
)

// Change is one entry of an appliance's revision log.
type Change struct {
	// Rev is the revision, increasing per appliance from 1.
	Rev int64 `json:"rev"`
	// Kind is one of the Kind constants.
	Kind string `json:"kind"`
	// DeviceID is the MFA device's id; the appliance stores it as the
	// account's source. Empty for KindUnpair.
	DeviceID string `json:"device_id,omitempty"`
	// State is the change's state on the server (a State constant).
	State string `json:"state"`
	// User and DeviceName describe an offer: "New account for User —
	// DeviceName".
	User       string `json:"user,omitempty"`
	DeviceName string `json:"device_name,omitempty"`
	// Name is the new name of a KindRename.
	Name string `json:"name,omitempty"`
	// Sealed is an offer's secret, sealed to the appliance's box key (see
	// SealOffer).
	Sealed []byte `json:"sealed,omitempty"`
	// ExpiresAt is when an offer lapses.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	// Batch, From and Count describe a takeover: the replacement it
	// belongs to, the name of the appliance replaced, and how many
	// accounts the replacement moves. The appliance asks once per Batch:
	// "Take over Count accounts from From?".
	Batch string `json:"batch,omitempty"`
	From  string `json:"from,omitempty"`
	Count int    `json:"count,omitempty"`
}

// Changes is the answer to a sync.
type Changes struct {
	// Changes holds every change after the requested revision (up to a
	// limit, see More), and offers still waiting for an answer whatever
	// their revision, in revision order.
	Changes []Change `json:"changes"`
	// More reports that the limit cut the list: sync again at once.
	More bool `json:"more"`
	// Rev is the latest revision of the appliance's log.
	Rev int64 `json:"rev"`
}

// Ack results.
const (
	ResultApplied  = "applied"  // a change other than an offer was applied
	ResultAccepted = "accepted" // an offer was accepted: the account is in the vault
	ResultRejected = "rejected" // an offer was refused
)

// Ack acknowledges one change.
type Ack struct {
	Rev    int64  `json:"rev"`
	Result string `json:"result"`
}

// AckRequest acknowledges changes. Acks are idempotent: sending one again
// changes nothing.
type AckRequest struct {
	Acks []Ack `json:"acks"`
}

// AckResult is the state of an acknowledged change after the ack. An
// offer accepted after it was cancelled stays StateCancelled; the cancel
// change that follows removes the account.
type AckResult struct {
	Rev   int64  `json:"rev"`
	State string `json:"state"`
}

// AckResponse answers an AckRequest, in its order.
type AckResponse struct {
	Results []AckResult `json:"results"`
}

// MaxHeld is the most MFA device ids one HeldRequest may carry; an
// appliance holding more sends several.
const MaxHeld = 256

// HeldRequest reports, after a new pairing (the first sync of a pairing,
// before any change is applied), the accounts an earlier pairing placed
// on the appliance: their MFA device ids, as Change.DeviceID gave them.
// Accounts added on the appliance itself are never reported.
type HeldRequest struct {
	DeviceIDs []string `json:"device_ids"`
}

// HeldResponse answers a HeldRequest. Adopted lists the reported MFA
// devices the server records as held by this appliance again: they are
// active and held by no other appliance, and the sync keeps them
// (renames, deletions) from now on. The appliance wipes every other
// account it reported: its MFA device was deleted, never confirmed, or
// is held by another appliance. Reporting the same ids again is
// harmless.
type HeldResponse struct {
	Adopted []string `json:"adopted"`
}

// Error codes of Error.
const (
	CodeUnsigned     = "unsigned"      // 401: the signature headers are missing or malformed
	CodeBadSignature = "bad_signature" // 401: the signature or body hash does not match
	CodeClockSkew    = "clock_skew"    // 401: the timestamp is too far from the server's clock
	CodeReplay       = "replay"        // 401: the nonce was already used
	CodeNotPaired    = "not_paired"    // 401: the key is not paired
	CodeForbidden    = "forbidden"     // 403: another appliance's resource
	CodeBadRequest   = "bad_request"   // 400
	CodeRateLimited  = "rate_limited"  // 429
	CodeBusy         = "busy"          // 503: try again later
	CodeInternal     = "internal"      // 500
)

// Error is the body of every error response.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"error"`
	// ServerTime is the server's clock, sent with CodeClockSkew so the
	// appliance can sign with a corrected timestamp.
	ServerTime time.Time `json:"server_time,omitzero"`
}

// Error returns the message with its code.
func (e *Error) Error() string { return fmt.Sprintf("%s (%s)", e.Message, e.Code) }
