package core

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/totpbox/totpbox/enroll/server/appliance"
	"github.com/totpbox/totpbox/enroll/store"
)

// ReplaceAppliance replaces the appliance old by the paired spare: each
// active account old holds is sent to spare through the signed sync,
// sealed to its key, once the person at the spare agrees; old is
// unpaired, and told to wipe, once all are there. Offers, pending
// registrations and local accounts on old do not move; the replacement
// lists them. Calling it again for an open replacement between the two
// returns it, and resumes it if it was declined on the spare. The start
// (or resumption) is audited; each account moved and the end are audited
// by the appliance API as the spare confirms them. It needs the admin
// role, and the sites of both appliances when the actor is limited to
// some.
func (s *Core) ReplaceAppliance(ctx context.Context, a Actor, old, spare appliance.Info) (appliance.Replacement, error) {
	if err := Allow(a, OpAppliances); err != nil {
		return appliance.Replacement{}, err
	}
	if old.ID == spare.ID {
		return appliance.Replacement{}, Fail(http.StatusBadRequest, "an appliance cannot replace itself: choose a spare that is another paired appliance")
	}
	accounts, notMoved, err := s.replacementPlan(ctx, old)
	if err != nil {
		return appliance.Replacement{}, err
	}
	r, err := s.appliances.Replace(ctx, old.ID, spare.ID, accounts, notMoved)
	switch {
	case errors.Is(err, appliance.ErrReplacing):
		return r, Fail(http.StatusConflict, "%q or %q is already part of another replacement: finish or resume that one first", old.Name, spare.Name)
	case errors.Is(err, appliance.ErrNothingToMove):
		return r, Fail(http.StatusConflict, "%q holds no active account to move: unpair it instead", old.Name)
	case errors.Is(err, appliance.ErrUnpairing) && spare.Unpairing:
		return r, Fail(http.StatusConflict, "the spare %q is being unpaired: pair it again first", spare.Name)
	case errors.Is(err, appliance.ErrUnpairing):
		return r, Fail(http.StatusConflict, "%q is being unpaired: its accounts can no longer move", old.Name)
	case err != nil:
		return r, ApplianceFailure(err)
	}
	s.Audit(ctx, a, "appliance.replace.start", "appliance:"+old.ID,
		fmt.Sprintf("replace %q by %q: %d account(s) to move, %d moved, %d not moved", old.Name, spare.Name, len(r.Accounts), r.Moved(), len(r.NotMoved)))
	return r, nil
}

// replacementPlan returns the active accounts appliance old holds, with
// their keys, and one line for each thing that does not move.
func (s *Core) replacementPlan(ctx context.Context, old appliance.Info) ([]appliance.TakeoverAccount, []string, error) {
	devs, err := s.appliances.DevicesOn(ctx, old.ID)
	if err != nil {
		return nil, nil, err
	}
	st, err := s.settings.get(ctx)
	if err != nil {
		return nil, nil, err
	}
	users := map[int64]store.User{}
	var accounts []appliance.TakeoverAccount
	var notMoved []string
	for _, d := range devs {
		u, ok := users[d.UserID]
		if !ok {
			if u, err = s.store.UserByID(ctx, d.UserID); err != nil {
				return nil, nil, fmt.Errorf("user of MFA device %d: %w", d.ID, err)
			}
			users[d.UserID] = u
		}
		if d.Status != store.StatusActive {
			notMoved = append(notMoved, fmt.Sprintf("pending registration: %s — %s", u.Username, d.Name))
			continue
		}
		k, err := s.openKey(d)
		if err != nil {
			return nil, nil, err
		}
		k.Issuer, k.Account = st.Issuer, s.accountLabel(u.Username, d.Name)
		accounts = append(accounts, appliance.TakeoverAccount{DeviceUID: d.UID, User: u.Username, DeviceName: d.Name, Key: k})
	}
	offers, err := s.appliances.PendingOffers(ctx, old.ID)
	if err != nil {
		return nil, nil, err
	}
	for _, o := range offers {
		notMoved = append(notMoved, fmt.Sprintf("offer: %s — %s", o.User, o.DeviceName))
	}
	if local := old.Accounts - len(devs); local > 0 {
		notMoved = append(notMoved, fmt.Sprintf("%d account(s) added on the appliance itself (totpctl): the server has no copy", local))
	}
	return accounts, notMoved, nil
}
