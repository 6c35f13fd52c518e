package device

import (
	"errors"
	"time"

	"github.com/totpbox/totpbox/clock"
	"github.com/totpbox/totpbox/device/vault"
	"github.com/totpbox/totpbox/display"
	"github.com/totpbox/totpbox/enroll"
)

// idleWait is how often the loop looks again when nothing is scheduled: the
// clock's state or the link may change without an event.
const idleWait = time.Second

// timeState maps the clock's trust state to the screen's glyph.
func timeState(s clock.State) display.TimeState {
	switch s {
	case clock.Synced:
		return display.TimeSynced
	case clock.Holdover:
		return display.TimeHoldover
	case clock.Unsynced:
		return display.TimeUnsynced
	}
	return display.TimeUntrusted
}

// build turns the loop's state into a Screen, the Status that describes
// it, and how long the frame stays right. a.mu is held.
func (a *Appliance) build(r clock.Reading, accts []vault.Account, now time.Time) (display.Screen, Status, time.Duration) {
	st := Status{TimeState: r.State.String(), AccountCount: len(accts), OfferPending: len(a.offers) > 0}
	scr := display.Screen{Time: timeState(r.State), Paper: a.cfg.Paper}
	if a.cfg.Link != nil {
		scr.Link = a.cfg.Link()
	}
	wait := idleWait
	until := func(t time.Time) {
		if d := t.Sub(now); d > 0 && d < wait {
			wait = d
		}
	}

	if a.cfg.BlankAfter > 0 && len(a.offers) == 0 {
		if now.Sub(a.lastInput) >= a.cfg.BlankAfter {
			a.blank = true
		}
		if a.blank {
			st.View, st.Blank = "blank", true
			return display.Screen{}, st, time.Minute
		}
		until(a.lastInput.Add(a.cfg.BlankAfter))
	}

	if len(a.offers) > 0 {
		o := a.offers[0]
		scr.View, scr.User, scr.DeviceName = display.ViewOffer, o.User, o.DeviceName
		st.View = scr.View.String()
		return scr, st, wait
	}
	if a.message != "" {
		scr.View, scr.Message = display.ViewMessage, a.message
		st.View = scr.View.String()
		return scr, st, wait
	}

	server, pairCode, waiting := "", "", false
	if a.cfg.Pairing != nil {
		server, pairCode, waiting = a.cfg.Pairing.PairingCode()
	}
	pages := len(accts)
	if waiting {
		pages++
	}
	if pages == 0 {
		scr.View, scr.Title, scr.Message = display.ViewMessage, "No accounts", "Add one in the console or with totpctl"
		st.View = scr.View.String()
		return scr, st, wait
	}
	a.resolveIndex(accts, pages)
	st.AccountIndex = a.index
	if a.index >= len(accts) {
		a.mode = modeCode
		scr.View, scr.Server, scr.PairingCode = display.ViewPairing, server, pairCode
		st.View = scr.View.String()
		return scr, st, wait
	}

	acct := accts[a.index]
	st.AccountID, st.Label = acct.ID, acct.Name()
	scr.Issuer, scr.Label = acct.Issuer, acct.Label
	if scr.Label == "" {
		scr.Label = acct.Key.Account
	}
	scr.Index, scr.Count = a.index, len(accts)
	if acct.State != vault.Pending && (a.mode == modeQR || a.mode == modeSecret) {
		a.mode = modeCode // the secret of an active account is never shown
	}
	switch a.mode {
	case modeQR:
		scr.View, scr.URI = display.ViewQR, acct.Key.URI()
		st.View = scr.View.String()
		return scr, st, wait
	case modeSecret:
		scr.View, scr.Secret = display.ViewSecret, acct.Key.SecretBase32()
		n := display.SecretPages(scr.Secret, a.size)
		if n > 0 {
			a.page = ((a.page % n) + n) % n
		}
		scr.Page = a.page
		st.View = scr.View.String()
		return scr, st, wait
	}

	if !r.State.Trusted() {
		scr.View, scr.Reason = display.ViewUntrusted, r.Reason
		st.View = scr.View.String()
		return scr, st, wait
	}
	if a.cfg.Hidden && !now.Before(a.revealUntil) {
		scr.View = display.ViewHidden
		st.View = scr.View.String()
		return scr, st, wait
	}
	if a.cfg.Hidden {
		until(a.revealUntil)
	}

	k := acct.Key
	step := enroll.Step(k, r.Time)
	end := enroll.StepStart(k, step+1)
	left := end.Sub(r.Time)
	// Whole seconds, rounded up: the frame changes once a second.
	secs := (left + time.Second - 1) / time.Second
	scr.View = display.ViewCode
	scr.Code = enroll.CodeAt(k, step)
	scr.Remaining, scr.Period = secs*time.Second, k.Period
	if left <= a.cfg.Preview {
		scr.NextCode = enroll.CodeAt(k, step+1)
	}
	st.View, st.CodeShown = scr.View.String(), true
	// Wake just after the displayed second changes.
	tick := left - (secs-1)*time.Second
	if tick <= 0 {
		tick = time.Second
	}
	if d := tick + time.Millisecond; d < wait {
		wait = d
	}
	return scr, st, wait
}

// resolveIndex keeps the focus on the same account across list changes,
// and in range. a.mu is held.
func (a *Appliance) resolveIndex(accts []vault.Account, pages int) {
	if a.focusID != "" {
		for i, acct := range accts {
			if acct.ID == a.focusID {
				a.index = i
				return
			}
		}
		a.focusID = ""
		a.mode = modeCode
	}
	if a.index >= pages || a.index < 0 {
		a.index = 0
	}
	if a.index < len(accts) {
		a.focusID = accts[a.index].ID
	}
}

// handle applies one press. Offers are answered without the lock held.
func (a *Appliance) handle(b Button) {
	a.mu.Lock()
	now := a.cfg.Now()
	a.lastInput = now
	if a.blank {
		a.blank = false // the press only wakes the screen
		a.mu.Unlock()
		return
	}
	if a.message != "" && len(a.offers) == 0 {
		a.message = ""
		a.mu.Unlock()
		return
	}
	if len(a.offers) > 0 {
		o := a.offers[0]
		if b == Next {
			a.mu.Unlock()
			return
		}
		a.offers = a.offers[1:]
		a.mu.Unlock()
		a.answerOffer(o, b == OK)
		return
	}
	defer a.mu.Unlock()
	switch a.mode {
	case modeQR:
		switch b {
		case OK:
			a.mode, a.page = modeSecret, 0
		case Back:
			a.mode = modeCode
		}
	case modeSecret:
		switch b {
		case Next:
			a.page++
		case OK:
			a.mode = modeCode
		case Back:
			a.mode = modeQR
		}
	default:
		switch b {
		case Next:
			a.index++
			a.focusID = ""
			a.revealUntil = time.Time{}
		case OK:
			if a.cfg.Hidden && !now.Before(a.revealUntil) {
				a.revealUntil = now.Add(a.cfg.RevealFor)
				return
			}
			a.mode = modeQR // build falls back to the code unless pending
		case Back:
			a.revealUntil = time.Time{}
		}
	}
}

// answerOffer answers o; an accepted offer's account is then focused with
// its QR code shown. Called from the loop goroutine without a.mu held.
func (a *Appliance) answerOffer(o Offer, accept bool) {
	if a.cfg.Offers == nil {
		return
	}
	err := a.cfg.Offers.Answer(o.ID, accept)
	if !accept {
		if err != nil {
			a.cfg.Logger.Warn("rejecting offer failed", "err", err)
		}
		return
	}
	var id string
	if err == nil {
		id, err = a.acceptedAccount(o.ID)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		a.cfg.Logger.Warn("accepting offer failed", "err", err)
		a.message = "Could not store the account"
		return
	}
	a.focusID, a.mode, a.page = id, modeQR, 0
	a.revealUntil = a.cfg.Now().Add(a.cfg.RevealFor)
}

// acceptedAccount returns the id of the account stored for offer id.
func (a *Appliance) acceptedAccount(offerID string) (string, error) {
	for _, acct := range a.cfg.Accounts.List() {
		if acct.Source == offerID && !acct.IsLocal() {
			return acct.ID, nil
		}
	}
	return "", errors.New("the accepted offer's account is not in the vault")
}
