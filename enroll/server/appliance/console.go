package appliance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/totpbox/totpbox/enroll"
	"github.com/totpbox/totpbox/enroll/proto"
	"github.com/totpbox/totpbox/enroll/store"
)

// Info describes a paired appliance for the console's Appliances page.
type Info struct {
	ID       string
	Name     string
	Paired   time.Time
	LastSeen time.Time // zero when never synced
	Version  string
	Accounts int
	// Clock is the last clock report; nil when none arrived yet.
	Clock *ClockReport
	// Secrets is how the appliance keeps its secrets, as its last sync
	// said: SecretsTPM, SecretsSoftware, or empty when unknown.
	Secrets string
	// Unpairing: unpaired in the console, waiting for the appliance to
	// wipe its server accounts and say so.
	Unpairing bool
	// Online: a sync of the appliance is held by this server now.
	Online bool
	// Warning is a one-line warning about the appliance's clock, or empty.
	Warning string
	// Site is the site the appliance belongs to; empty for none.
	Site string
}

// An appliance's secrets modes, as Info.Secrets holds them.
const (
	// SecretsTPM: its vault key is sealed to a TPM, which computes codes.
	SecretsTPM = proto.SecretsTPM
	// SecretsSoftware: its vault key is a file on the SD card; a copy of
	// the card copies every account.
	SecretsSoftware = proto.SecretsSoftware
)

// ClockReport is an appliance's last clock report, as the server saw it.
type ClockReport struct {
	ApplianceTime time.Time     // what the appliance's clock read
	Bound         time.Duration // its error bound; zero when BoundUnknown
	BoundUnknown  bool          // its clock had no bound: it never synced
	State         string        // "SYNCED", "HOLDOVER", "UNTRUSTED" or "UNSYNCED"
	Frequency     float64       // its timebase's frequency error, ppm
	Authenticated bool          // its clock's last update came only from NTS servers
	// Offset is the server's clock minus ApplianceTime on receipt; it
	// includes the request's network delay.
	Offset time.Duration
	At     time.Time // server time of the report
}

// WarnFraction is the share of half a time step at which |offset| + bound
// draws a warning: codes are matched by time step, so an appliance whose
// time may be off by half a step shows codes the server reads as the
// neighbouring step.
const WarnFraction = 0.8

func (a *API) info(app store.Appliance) Info {
	// The version and clock state as checked at the sync: a value stored
	// before the check is shown with its unfit characters replaced.
	in := Info{ID: app.ID, Name: app.Name, Paired: app.Paired, LastSeen: app.LastSeen, Version: proto.Printable(app.Version),
		Accounts: app.Accounts, Secrets: app.Secrets, Unpairing: app.Unpairing, Online: a.isOnline(app.ID), Site: app.Site}
	if c := app.Clock; !c.At.IsZero() {
		in.Clock = &ClockReport{ApplianceTime: c.ApplianceTime, Bound: c.Bound, BoundUnknown: c.BoundUnknown, State: proto.Printable(c.State),
			Frequency: c.Frequency, Authenticated: c.Authenticated, Offset: c.Offset, At: c.At}
		in.Warning = ClockWarning(*in.Clock, a.cfg.Period)
	}
	return in
}

// WarnThreshold is the |offset| + bound at which ClockWarning warns for
// the time step period.
func WarnThreshold(period time.Duration) time.Duration {
	return time.Duration(WarnFraction * float64(period/2))
}

// ClockHistory returns the appliance's clock samples from since on,
// oldest first, and the warning threshold (WarnThreshold of the time
// step). ErrNoAppliance when there is no such appliance.
func (a *API) ClockHistory(ctx context.Context, id string, since time.Time) ([]store.ClockSample, time.Duration, error) {
	if _, err := a.appliance(ctx, id); err != nil {
		return nil, 0, err
	}
	list, err := a.store.ClockSamples(ctx, id, since)
	if err != nil {
		return nil, 0, fmt.Errorf("clock history of %s: %w", id, err)
	}
	return list, WarnThreshold(a.cfg.Period), nil
}

// ClockWarning returns a warning about a clock report judged against the
// time step period, or "" when the appliance keeps good time.
func ClockWarning(c ClockReport, period time.Duration) string {
	switch c.State {
	case "SYNCED", "HOLDOVER":
	default:
		return fmt.Sprintf("the appliance's clock is %s: it shows no codes", c.State)
	}
	if c.BoundUnknown {
		return "the appliance's clock reports no error bound: how far off it may be is unknown"
	}
	off := c.Offset
	if off < 0 {
		off = -off
	}
	margin := off + c.Bound
	if margin >= WarnThreshold(period) {
		return fmt.Sprintf("the appliance's time may be off by %v, near half of a %v time step: codes may be refused",
			margin.Round(100*time.Millisecond), period)
	}
	return ""
}

// Pair pairs the appliance showing code (as typed: any case, spaces and
// dashes allowed) under name, and returns it. ErrBadCode when no appliance
// waits with that code, ErrNameTaken when the name is in use; a bad name
// gets an error naming the problem.
func (a *API) Pair(ctx context.Context, code, name string) (Info, error) {
	c, err := NormalizeCode(code)
	if err != nil {
		return Info{}, err
	}
	name, err = checkName(name)
	if err != nil {
		return Info{}, err
	}
	if err := a.nameFree(ctx, name, ""); err != nil {
		return Info{}, err
	}
	app := store.Appliance{ID: newApplianceID(), Name: name, Paired: a.clock.Now()}
	err = a.store.PairAppliance(ctx, c, app.Paired, &app)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return Info{}, ErrBadCode
	case errors.Is(err, store.ErrConflict):
		return Info{}, fmt.Errorf("pair appliance: %w or the appliance is already paired", ErrNameTaken)
	case err != nil:
		return Info{}, fmt.Errorf("pair appliance: %w", err)
	}
	a.log.Info("appliance paired", "appliance", app.ID, "name", app.Name, "key", fingerprint(app.SignKey))
	store.AfterCommit(ctx, func() { a.wake(keyTopic(app.SignKey)) })
	return a.info(app), nil
}

func (a *API) nameFree(ctx context.Context, name, self string) error {
	all, err := a.store.Appliances(ctx)
	if err != nil {
		return fmt.Errorf("list appliances: %w", err)
	}
	for _, b := range all {
		if b.ID != self && equalFold(b.Name, name) {
			return ErrNameTaken
		}
	}
	return nil
}

// Appliances lists the paired appliances by name.
func (a *API) Appliances(ctx context.Context) ([]Info, error) {
	all, err := a.store.Appliances(ctx)
	if err != nil {
		return nil, fmt.Errorf("list appliances: %w", err)
	}
	out := make([]Info, len(all))
	for i, app := range all {
		out[i] = a.info(app)
	}
	return out, nil
}

// Appliance returns one appliance; ErrNoAppliance when there is none.
func (a *API) Appliance(ctx context.Context, id string) (Info, error) {
	app, err := a.appliance(ctx, id)
	if err != nil {
		return Info{}, err
	}
	return a.info(app), nil
}

func (a *API) appliance(ctx context.Context, id string) (store.Appliance, error) {
	app, err := a.store.Appliance(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return app, ErrNoAppliance
	}
	if err != nil {
		return app, fmt.Errorf("appliance %s: %w", id, err)
	}
	return app, nil
}

// RenameAppliance changes an appliance's friendly name.
func (a *API) RenameAppliance(ctx context.Context, id, name string) error {
	name, err := checkName(name)
	if err != nil {
		return err
	}
	if err := a.nameFree(ctx, name, id); err != nil {
		return err
	}
	err = a.store.RenameAppliance(ctx, id, name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return ErrNoAppliance
	case errors.Is(err, store.ErrConflict):
		return ErrNameTaken
	case err != nil:
		return fmt.Errorf("rename appliance: %w", err)
	}
	return nil
}

// SetSite sets the site an appliance belongs to; empty for none.
func (a *API) SetSite(ctx context.Context, id, site string) error {
	err := a.store.SetApplianceSite(ctx, id, site)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return ErrNoAppliance
	case err != nil:
		return fmt.Errorf("set appliance site: %w", err)
	}
	return nil
}

// Unpair unpairs an appliance: its pending offers are withdrawn and, at
// its next sync, it wipes every account the server delivered (accounts
// added on the appliance stay) and its record is removed. Until then it
// is listed with Unpairing set. Unpairing twice is harmless.
func (a *API) Unpair(ctx context.Context, id string) error {
	_, err := a.store.UnpairAppliance(ctx, id, a.clock.Now())
	if errors.Is(err, store.ErrNotFound) {
		return ErrNoAppliance
	}
	if err != nil {
		return fmt.Errorf("unpair appliance: %w", err)
	}
	a.log.Info("appliance unpaired", "appliance", id)
	store.AfterCommit(ctx, func() { a.wake(id) })
	return nil
}

// Forget removes an appliance's record at once, without waiting for it
// to acknowledge an unpair: for an appliance that is lost or broken. If it
// comes back it is refused as not paired and keeps its accounts; paired
// again, it reports those the server placed (POST {id}/held), and the
// server re-adopts the ones still active and on no other appliance.
func (a *API) Forget(ctx context.Context, id string) error {
	app, err := a.appliance(ctx, id)
	if err != nil {
		return err
	}
	if err := a.store.DeleteAppliance(ctx, id); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("forget appliance: %w", err)
	}
	a.log.Info("appliance forgotten", "appliance", id)
	a.wake(id)
	a.wake(keyTopic(app.SignKey))
	return nil
}

// Limits of offers.
const (
	MaxDeviceIDLen = 128
	MaxOfferText   = 128 // user and device name, in characters
)

// SendOffer sends the pending registration deviceID (the MFA device's UID)
// to an appliance: user and deviceName are shown there, and key, sealed to
// the appliance's box key, is stored as an account if someone presses OK.
// The offer lapses at expires. Sending the same device to the same
// appliance again is harmless; sending it to another appliance withdraws
// the first offer, unless it was already accepted (ErrOnAnother).
func (a *API) SendOffer(ctx context.Context, applianceID, deviceID, user, deviceName string, key enroll.Key, expires time.Time) error {
	now := a.clock.Now()
	switch {
	case deviceID == "" || len(deviceID) > MaxDeviceIDLen:
		return fmt.Errorf("%w: device id must be 1 to %d bytes", ErrBadOffer, MaxDeviceIDLen)
	case utf8.RuneCountInString(user) > MaxOfferText || utf8.RuneCountInString(deviceName) > MaxOfferText:
		return fmt.Errorf("%w: user and device name must be at most %d characters", ErrBadOffer, MaxOfferText)
	case !expires.After(now):
		return ErrAlreadyExpired
	}
	app, err := a.appliance(ctx, applianceID)
	if err != nil {
		return err
	}
	if app.Unpairing {
		return ErrUnpairing
	}
	offers, err := a.store.OffersByDevice(ctx, deviceID)
	if err != nil {
		return fmt.Errorf("send offer: %w", err)
	}
	for _, o := range offers {
		switch {
		case o.State == store.ChangeAccepted && o.ApplianceID != applianceID:
			return ErrOnAnother
		case o.State == store.ChangeAccepted:
			return nil // already on this appliance
		case o.State != store.ChangePending || !o.Expires.After(now):
		case o.ApplianceID == applianceID:
			return nil // the same offer is already queued
		default:
			if err := a.appendChange(ctx, o.ApplianceID, store.ChangeCancel, deviceID, nil, time.Time{}); err != nil {
				return fmt.Errorf("send offer: withdraw the offer on appliance %s: %w", o.ApplianceID, err)
			}
		}
	}
	seq := proto.NewSequence()
	sealed, err := proto.SealOffer(app.BoxKey, deviceID, key, seq)
	if err != nil {
		return err
	}
	payload, err := json.Marshal(offerPayload{User: user, DeviceName: deviceName, Sealed: sealed, Sequence: seq})
	if err != nil {
		return fmt.Errorf("send offer: %w", err)
	}
	if err := a.appendChange(ctx, applianceID, store.ChangeOffer, deviceID, payload, expires); err != nil {
		if errors.Is(err, store.ErrStale) {
			return ErrUnpairing
		}
		return fmt.Errorf("send offer: %w", err)
	}
	a.log.Info("offer sent", "appliance", applianceID, "device", deviceID)
	return nil
}

func (a *API) appendChange(ctx context.Context, applianceID string, kind store.ChangeKind, deviceID string, payload []byte, expires time.Time) error {
	c := store.Change{ApplianceID: applianceID, Kind: kind, DeviceUID: deviceID, Payload: payload,
		Created: a.clock.Now(), Expires: expires}
	if err := a.store.AppendChange(ctx, &c); err != nil {
		return err
	}
	a.wake(applianceID)
	return nil
}

// Offer states reported by OfferState, beside proto.StatePending,
// StateAccepted, StateRejected and StateCancelled.
const StateExpired = "expired"

// OfferStatus is where the latest offer of an MFA device stands.
type OfferStatus struct {
	ApplianceID   string
	ApplianceName string // empty when the appliance is gone
	// State is "pending", "accepted", "rejected" (on the appliance),
	// "cancelled" or "expired".
	State    string
	Sent     time.Time
	Answered time.Time // zero while pending
	// Sequence is the button sequence that accepts the offer on the
	// appliance ("next", "back", "ok"), while it is pending: shown on
	// the console only, it proves the person at the appliance sees it.
	Sequence []string
}

// SequenceText is the button sequence as the console shows it: "OK, then
// NEXT BACK NEXT OK" (OK on the offer asks for the sequence); empty when
// there is none.
func (o OfferStatus) SequenceText() string {
	if len(o.Sequence) == 0 {
		return ""
	}
	return "OK, then " + strings.ToUpper(strings.Join(o.Sequence, " "))
}

// OfferState reports the latest offer of deviceID; ErrNoOffer when it was
// never sent to an appliance.
func (a *API) OfferState(ctx context.Context, deviceID string) (OfferStatus, error) {
	offers, err := a.store.OffersByDevice(ctx, deviceID)
	if err != nil {
		return OfferStatus{}, fmt.Errorf("offer state: %w", err)
	}
	if len(offers) == 0 {
		return OfferStatus{}, ErrNoOffer
	}
	// Newest first; an offer sent to another appliance cancels the
	// previous one at the same instant, so among equals prefer one that
	// was not cancelled.
	o := offers[0]
	for _, p := range offers[1:] {
		if p.Created.Equal(o.Created) && o.State == store.ChangeCancelled && p.State != store.ChangeCancelled {
			o = p
		}
	}
	st := OfferStatus{ApplianceID: o.ApplianceID, State: string(o.State), Sent: o.Created, Answered: o.Answered}
	if o.State == store.ChangePending && !o.Expires.After(a.clock.Now()) {
		st.State = StateExpired
	}
	if st.State == proto.StatePending {
		var p offerPayload
		if err := json.Unmarshal(o.Payload, &p); err == nil {
			st.Sequence = p.Sequence
		}
	}
	if app, err := a.store.Appliance(ctx, o.ApplianceID); err == nil {
		st.ApplianceName = app.Name
	}
	return st, nil
}

// holders returns the appliances holding deviceID: those whose latest
// offer of it is pending or accepted.
func (a *API) holders(ctx context.Context, deviceID string, pendingOnly bool) ([]string, error) {
	offers, err := a.store.OffersByDevice(ctx, deviceID)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []string
	for _, o := range offers { // newest first
		if seen[o.ApplianceID] {
			continue
		}
		seen[o.ApplianceID] = true
		if o.State == store.ChangePending || o.State == store.ChangeAccepted && !pendingOnly {
			out = append(out, o.ApplianceID)
		}
	}
	return out, nil
}

// queue appends a change of kind for deviceID to every appliance holding
// it. An appliance being unpaired is skipped: it is about to wipe the
// account anyway.
func (a *API) queue(ctx context.Context, kind store.ChangeKind, deviceID string, payload []byte, pendingOnly bool) error {
	ids, err := a.holders(ctx, deviceID, pendingOnly)
	if err != nil {
		return fmt.Errorf("%s change: %w", kind, err)
	}
	for _, id := range ids {
		err := a.appendChange(ctx, id, kind, deviceID, payload, time.Time{})
		if err != nil && !errors.Is(err, store.ErrStale) && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("%s change for appliance %s: %w", kind, id, err)
		}
	}
	return nil
}

// DeviceChange is a change of an MFA device that the appliances holding
// it (or offered it) must hear about.
type DeviceChange struct {
	// Kind is store.ChangeActivate (the registration was confirmed: the
	// account becomes active), store.ChangeRename (Name becomes the
	// account's label), store.ChangeDelete (the MFA device was deleted:
	// the account is wiped, or the offer withdrawn) or store.ChangeExpire
	// (the registration expired unconfirmed: the pending account is
	// wiped, or the offer withdrawn).
	Kind store.ChangeKind
	// DeviceUID is the MFA device's UID.
	DeviceUID string
	// Name is the new friendly name, for store.ChangeRename.
	Name string
}

// DeviceChanged queues c for the appliances holding the MFA device. It
// does nothing for a device on no appliance, so it may be called for
// every change. Another Kind is an error naming it.
func (a *API) DeviceChanged(ctx context.Context, c DeviceChange) error {
	var payload []byte
	switch c.Kind {
	case store.ChangeActivate, store.ChangeDelete, store.ChangeExpire:
	case store.ChangeRename:
		var err error
		if payload, err = json.Marshal(renamePayload{Name: c.Name}); err != nil {
			return err
		}
	default:
		return fmt.Errorf("device change: kind %q is not activate, rename, delete or expire", c.Kind)
	}
	if c.Kind == store.ChangeDelete {
		// An account being moved to a spare is no longer waited for.
		if err := a.dropFromReplacements(ctx, c.DeviceUID); err != nil {
			return err
		}
	}
	return a.queue(ctx, c.Kind, c.DeviceUID, payload, false)
}

// CancelOffer withdraws an offer of deviceID that was not answered yet
// (the admin left the wizard, or chose the authenticator app instead).
func (a *API) CancelOffer(ctx context.Context, deviceID string) error {
	return a.queue(ctx, store.ChangeCancel, deviceID, nil, true)
}
