package appliance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/totpbox/totpbox/enroll"
	"github.com/totpbox/totpbox/enroll/proto"
	"github.com/totpbox/totpbox/enroll/store"
)

// Replacing an appliance: each active account the old appliance holds is
// queued on the spare as a takeover — an offer change whose payload says
// so, its secret sealed to the spare's box key — and the spare asks once
// for the batch. Once the spare acknowledges storing an account the store
// records the spare as its holder (the accepted offer) and ends the old
// appliance's hold; the last one unpairs the old appliance with a wipe.
// Everything lives in the store, so a restart of the server or the spare
// resumes where it stood, and acks are idempotent.

// TakeoverLifetime is how long a queued takeover waits for the spare;
// after it the replacement is resumed from the console.
const TakeoverLifetime = 30 * 24 * time.Hour

// Errors of Replace, for errors.Is.
var (
	ErrSameAppliance = errors.New("an appliance cannot replace itself")
	ErrReplacing     = errors.New("the appliance is already part of another replacement")
	ErrNothingToMove = errors.New("the appliance holds no active account to move")
	ErrNotDeclined   = errors.New("the replacement is not declined")
)

// takeoverPayload marks an offer payload as a takeover.
type takeoverPayload struct {
	Batch string `json:"batch"`
	From  string `json:"from"`
	Count int    `json:"count"`
}

// wipePayload is the payload of the unpair change that tells a replaced
// appliance to wipe.
type wipePayload struct {
	Wipe       bool   `json:"wipe"`
	ReplacedBy string `json:"replaced_by"`
}

// TakeoverAccount is one active account to move to the spare.
type TakeoverAccount struct {
	// DeviceUID is the MFA device's UID; User and DeviceName describe it.
	DeviceUID, User, DeviceName string
	// Key is its key, with issuer and account label as the appliance
	// shows them.
	Key enroll.Key
}

// Replacement is a replacement as the console and the admin API show it.
type Replacement = store.Replacement

// Replace begins replacing the appliance oldID by the paired spare
// spareID: accounts are the active accounts the old appliance holds, each
// queued on the spare sealed to its key; notMoved lists what stays behind.
// The same call for a replacement already open between the two changes
// nothing and returns it; for a declined one it resumes it (see Resume).
func (a *API) Replace(ctx context.Context, oldID, spareID string, accounts []TakeoverAccount, notMoved []string) (Replacement, error) {
	if oldID == spareID {
		return Replacement{}, ErrSameAppliance
	}
	old, err := a.appliance(ctx, oldID)
	if err != nil {
		return Replacement{}, err
	}
	spare, err := a.appliance(ctx, spareID)
	if err != nil {
		return Replacement{}, err
	}
	if r, ok, err := a.openBetween(ctx, oldID, spareID); err != nil {
		return Replacement{}, err
	} else if ok {
		if r.State == store.ReplacementDeclined {
			return a.Resume(ctx, r.ID, accounts)
		}
		return r, nil
	}
	if old.Unpairing || spare.Unpairing {
		return Replacement{}, ErrUnpairing
	}
	for _, id := range []string{oldID, spareID} {
		list, err := a.store.ReplacementsOf(ctx, id)
		if err != nil {
			return Replacement{}, fmt.Errorf("replacements of %s: %w", id, err)
		}
		for _, r := range list {
			if r.Open() {
				return Replacement{}, ErrReplacing
			}
		}
	}
	if len(accounts) == 0 {
		return Replacement{}, ErrNothingToMove
	}
	r := store.Replacement{ID: newApplianceID(), OldID: old.ID, OldName: old.Name, SpareID: spare.ID, SpareName: spare.Name,
		NotMoved: notMoved, Created: a.clock.Now()}
	for _, acc := range accounts {
		r.Accounts = append(r.Accounts, store.ReplacementAccount{DeviceUID: acc.DeviceUID})
	}
	if err := a.store.CreateReplacement(ctx, r); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return Replacement{}, ErrReplacing
		}
		return Replacement{}, fmt.Errorf("replace appliance: %w", err)
	}
	if err := a.queueTakeovers(ctx, r, spare, accounts); err != nil {
		return Replacement{}, err
	}
	a.log.Info("appliance replacement begun", "old", old.ID, "spare", spare.ID, "accounts", len(accounts))
	return a.Replacement(ctx, r.ID)
}

// openBetween returns the open replacement of oldID by spareID, if any.
func (a *API) openBetween(ctx context.Context, oldID, spareID string) (Replacement, bool, error) {
	list, err := a.store.ReplacementsOf(ctx, oldID)
	if err != nil {
		return Replacement{}, false, fmt.Errorf("replacements of %s: %w", oldID, err)
	}
	for _, r := range list {
		if r.Open() && r.OldID == oldID && r.SpareID == spareID {
			return r, true, nil
		}
	}
	return Replacement{}, false, nil
}

// Resume queues again, on the spare, the accounts of the declined
// replacement id that are not moved yet (those of accounts, by
// DeviceUID; one no longer among them stays waiting), and sets it
// waiting. The spare asks again, once.
func (a *API) Resume(ctx context.Context, id string, accounts []TakeoverAccount) (Replacement, error) {
	r, err := a.Replacement(ctx, id)
	if err != nil {
		return Replacement{}, err
	}
	if r.State != store.ReplacementDeclined {
		return Replacement{}, ErrNotDeclined
	}
	spare, err := a.appliance(ctx, r.SpareID)
	if err != nil {
		return Replacement{}, err
	}
	if spare.Unpairing {
		return Replacement{}, ErrUnpairing
	}
	left := map[string]bool{}
	for _, acc := range r.Accounts {
		if !acc.Moved() {
			left[acc.DeviceUID] = true
		}
	}
	var queue []TakeoverAccount
	for _, acc := range accounts {
		if left[acc.DeviceUID] {
			queue = append(queue, acc)
		}
	}
	if err := a.store.SetReplacementState(ctx, r.ID, store.ReplacementWaiting, a.clock.Now()); err != nil {
		return Replacement{}, fmt.Errorf("resume replacement: %w", err)
	}
	if err := a.queueTakeovers(ctx, r, spare, queue); err != nil {
		return Replacement{}, err
	}
	a.log.Info("appliance replacement resumed", "replacement", r.ID, "accounts", len(queue))
	return a.Replacement(ctx, r.ID)
}

// queueTakeovers appends a takeover of each account to the spare's log.
func (a *API) queueTakeovers(ctx context.Context, r Replacement, spare store.Appliance, accounts []TakeoverAccount) error {
	expires := a.clock.Now().Add(TakeoverLifetime)
	for _, acc := range accounts {
		sealed, err := proto.SealTakeover(spare.BoxKey, acc.DeviceUID, acc.Key)
		if err != nil {
			return fmt.Errorf("replace appliance: account %s: %w", acc.DeviceUID, err)
		}
		payload, err := json.Marshal(offerPayload{User: acc.User, DeviceName: acc.DeviceName, Sealed: sealed,
			Takeover: &takeoverPayload{Batch: r.ID, From: r.OldName, Count: len(r.Accounts)}})
		if err != nil {
			return fmt.Errorf("replace appliance: %w", err)
		}
		c := store.Change{ApplianceID: spare.ID, Kind: store.ChangeOffer, DeviceUID: acc.DeviceUID, Payload: payload,
			Created: a.clock.Now(), Expires: expires}
		if err := a.store.AppendChange(ctx, &c); err != nil {
			if errors.Is(err, store.ErrStale) {
				return ErrUnpairing
			}
			return fmt.Errorf("replace appliance: queue account %s: %w", acc.DeviceUID, err)
		}
		if err := a.store.SetTakeoverRev(ctx, r.ID, acc.DeviceUID, c.Rev); err != nil {
			return fmt.Errorf("replace appliance: record account %s: %w", acc.DeviceUID, err)
		}
	}
	a.wake(spare.ID)
	return nil
}

// Replacement returns one replacement; ErrNoReplacement when missing.
func (a *API) Replacement(ctx context.Context, id string) (Replacement, error) {
	r, err := a.store.Replacement(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return r, ErrNoReplacement
	}
	if err != nil {
		return r, fmt.Errorf("replacement %s: %w", id, err)
	}
	return r, nil
}

// ErrNoReplacement: no such replacement.
var ErrNoReplacement = errors.New("no such replacement")

// Replacements returns the replacements applianceID is part of, newest
// first.
func (a *API) Replacements(ctx context.Context, applianceID string) ([]Replacement, error) {
	list, err := a.store.ReplacementsOf(ctx, applianceID)
	if err != nil {
		return nil, fmt.Errorf("replacements of %s: %w", applianceID, err)
	}
	return list, nil
}

// PendingOffer is an offer waiting on an appliance.
type PendingOffer struct {
	DeviceUID, User, DeviceName string
}

// PendingOffers returns the offers (not takeovers) waiting for an answer
// on appliance id.
func (a *API) PendingOffers(ctx context.Context, id string) ([]PendingOffer, error) {
	app, err := a.appliance(ctx, id)
	if err != nil {
		return nil, err
	}
	list, err := a.store.Changes(ctx, id, app.Rev, a.clock.Now(), 0)
	if err != nil {
		return nil, fmt.Errorf("pending offers of %s: %w", id, err)
	}
	var out []PendingOffer
	for _, c := range list {
		var p offerPayload
		if c.Kind != store.ChangeOffer || c.State != store.ChangePending || json.Unmarshal(c.Payload, &p) != nil || p.Takeover != nil {
			continue
		}
		out = append(out, PendingOffer{DeviceUID: c.DeviceUID, User: p.User, DeviceName: p.DeviceName})
	}
	return out, nil
}

// takeoverAnswered records the spare's answer to the takeover c (state
// accepted or rejected), after the store recorded it: an accepted one
// moves the account (once, however often the ack comes), a rejected one
// declines the replacement. Each move is audited; the last one raises
// appliance.replace and wakes the old appliance to wipe.
func (a *API) takeoverAnswered(r *http.Request, app store.Appliance, c store.Change) error {
	ctx := r.Context()
	list, err := a.store.ReplacementsOf(ctx, app.ID)
	if err != nil {
		return err
	}
	var rep Replacement
	found := false
	for _, x := range list {
		if x.SpareID != app.ID {
			continue
		}
		for _, acc := range x.Accounts {
			if acc.DeviceUID == c.DeviceUID && (x.Open() || acc.Moved()) {
				rep, found = x, true
			}
		}
		if found {
			break
		}
	}
	if !found {
		return nil // an ordinary offer
	}
	now := a.clock.Now()
	if c.State == store.ChangeRejected {
		if rep.State != store.ReplacementWaiting {
			return nil
		}
		if err := a.store.SetReplacementState(ctx, rep.ID, store.ReplacementDeclined, now); err != nil && !errors.Is(err, store.ErrStale) {
			return err
		}
		// The batch's other takeovers are withdrawn, so that none still
		// on its way asks again; resuming queues new ones.
		for _, acc := range rep.Accounts {
			if acc.Rev == 0 || acc.Moved() || acc.DeviceUID == c.DeviceUID {
				continue
			}
			if _, err := a.store.AnswerChange(ctx, app.ID, acc.Rev, store.ChangeCancelled, now); err != nil &&
				!errors.Is(err, store.ErrStale) && !errors.Is(err, store.ErrNotFound) {
				return err
			}
		}
		a.log.Info("replacement declined on the spare", "replacement", rep.ID, "spare", app.ID)
		a.audit(r, app, "appliance.replace.decline", "appliance:"+rep.OldID,
			fmt.Sprintf("BACK on %q: %d of %d account(s) not moved from %q", app.Name, len(rep.Accounts)-rep.Moved(), len(rep.Accounts), rep.OldName))
		return nil
	}
	wipe, err := json.Marshal(wipePayload{Wipe: true, ReplacedBy: rep.SpareName})
	if err != nil {
		return err
	}
	m, err := a.store.MoveAccount(ctx, rep.ID, c.DeviceUID, wipe, now)
	if err != nil {
		return err
	}
	if m.Moved {
		a.audit(r, app, "device.move", "device:"+c.DeviceUID, fmt.Sprintf("moved from %q to %q", rep.OldName, rep.SpareName))
		a.wake(rep.OldID)
	}
	if m.Done {
		a.log.Info("appliance replaced", "old", rep.OldID, "spare", app.ID, "accounts", len(rep.Accounts))
		a.audit(r, app, "appliance.replace", "appliance:"+rep.OldID,
			fmt.Sprintf("%q replaced by %q: %d account(s) moved; %q unpaired and told to wipe", rep.OldName, rep.SpareName, len(rep.Accounts), rep.OldName))
		a.wake(rep.OldID)
	}
	return nil
}

// DevicesOn returns the MFA devices the server placed on appliance id
// (see store.ApplianceStore.DevicesOnAppliance).
func (a *API) DevicesOn(ctx context.Context, id string) ([]store.Device, error) {
	devs, err := a.store.DevicesOnAppliance(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("mfa devices on %s: %w", id, err)
	}
	return devs, nil
}

// dropFromReplacements removes the MFA device deviceID, deleted, from the
// open replacements that wait for it (found through the appliances that
// hold or are offered it), so that they finish without it; one left with
// nothing to move is done, audited (appliance.replace, by the system)
// and the old appliance told to wipe.
func (a *API) dropFromReplacements(ctx context.Context, deviceID string) error {
	ids, err := a.holders(ctx, deviceID, false)
	if err != nil {
		return fmt.Errorf("replacements of device %s: %w", deviceID, err)
	}
	done := map[string]bool{}
	for _, id := range ids {
		list, err := a.store.ReplacementsOf(ctx, id)
		if err != nil {
			return fmt.Errorf("replacements of %s: %w", id, err)
		}
		for _, rep := range list {
			if !rep.Open() || done[rep.ID] {
				continue
			}
			done[rep.ID] = true
			wipe, err := json.Marshal(wipePayload{Wipe: true, ReplacedBy: rep.SpareName})
			if err != nil {
				return err
			}
			m, err := a.store.DropAccount(ctx, rep.ID, deviceID, wipe, a.clock.Now())
			if err != nil {
				return fmt.Errorf("drop device %s from replacement %s: %w", deviceID, rep.ID, err)
			}
			if m.Done {
				a.log.Info("appliance replaced", "old", rep.OldID, "spare", rep.SpareID, "accounts", rep.Moved())
				a.record(ctx, store.AuditEvent{Time: a.clock.Now(), Actor: "system", Action: "appliance.replace",
					Target: "appliance:" + rep.OldID, Detail: fmt.Sprintf("%q replaced by %q: %d account(s) moved, the rest deleted meanwhile; %q unpaired and told to wipe",
						rep.OldName, rep.SpareName, rep.Moved(), rep.OldName)})
				a.wake(rep.OldID)
			}
		}
	}
	return nil
}
