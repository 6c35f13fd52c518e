package device

import (
	"errors"
	"fmt"
	"slices"
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

// frame is a Screen being built, with its Status and how long it stays
// right.
type frame struct {
	scr  display.Screen
	st   Status
	wait time.Duration
	now  time.Time
}

// until shortens the frame's wait to end at t, when t is sooner.
func (f *frame) until(t time.Time) {
	if d := t.Sub(f.now); d > 0 && d < f.wait {
		f.wait = d
	}
}

// show sets the frame's view and the Status naming it.
func (f *frame) show(v display.View) {
	f.scr.View = v
	f.st.View = v.String()
}

// build turns the loop's state into a Screen, the Status that describes
// it, and how long the frame stays right. a.mu is held. Each step either
// decides the frame or leaves it to the next: blank, offer or message,
// no accounts or pairing, the pending account's QR code or secret, the
// untrusted clock or hidden code, and last the code.
func (a *Appliance) build(r clock.Reading, accts []vault.Account, now time.Time) (display.Screen, Status, time.Duration) {
	f := &frame{
		scr:  display.Screen{Time: timeState(r.State), Paper: a.cfg.Paper},
		st:   Status{TimeState: r.State.String(), AccountCount: len(accts), OfferPending: len(a.offers) > 0},
		wait: idleWait,
		now:  now,
	}
	if a.cfg.Link != nil {
		f.scr.Link = a.cfg.Link()
	}
	if a.blanked(f) {
		f.st.View, f.st.Blank = "blank", true
		return display.Screen{}, f.st, time.Minute
	}
	a.bringBackOffers(len(accts))
	if a.buildNotice(f) || a.buildPairing(f, accts) {
		return f.scr, f.st, f.wait
	}
	acct := accts[a.index]
	a.buildAccount(f, acct)
	if !a.buildSecret(f, acct) && !a.buildWithheld(f, r) {
		a.buildCode(f, acct, r)
	}
	return f.scr, f.st, f.wait
}

// blanked reports whether the screen is blank: no press for BlankAfter
// and no offer shown. Otherwise the frame wakes when it would blank.
func (a *Appliance) blanked(f *frame) bool {
	if _, shown := a.shownOffer(); a.cfg.BlankAfter <= 0 || shown || a.takeover != nil {
		return false
	}
	if f.now.Sub(a.lastInput) >= a.cfg.BlankAfter {
		a.blank = true
	}
	if a.blank {
		return true
	}
	f.until(a.lastInput.Add(a.cfg.BlankAfter))
	return false
}

// buildNotice shows the oldest offer not set aside, or else the transient
// message.
func (a *Appliance) buildNotice(f *frame) bool {
	o, offered := a.shownOffer()
	switch {
	case a.takeover != nil:
		f.scr.DeviceName, f.scr.Count = a.takeover.From, a.takeover.Count
		f.st.Message = fmt.Sprintf("Take over %d accounts from %s?", a.takeover.Count, a.takeover.From)
		f.show(display.ViewTakeover)
	case offered:
		f.scr.User, f.scr.DeviceName = o.User, o.DeviceName
		f.scr.TriesLeft = MaxWrongSequences - a.wrong[o.ID]
		if e := a.entry; e != nil && !f.now.Before(e.until) {
			a.entry = nil // left unfinished: dropped, not counted
		}
		if e := a.entry; e != nil && e.id == o.ID {
			// Only how many presses were entered is shown, never which.
			f.scr.Entered, f.scr.Needed = len(e.presses), len(o.Sequence)
			f.show(display.ViewOfferEntry)
			f.until(e.until)
		} else {
			f.show(display.ViewOffer)
		}
	case a.message != "":
		f.scr.Message = a.message
		f.st.Message = a.message
		f.show(display.ViewMessage)
	default:
		return false
	}
	return true
}

// bringBackOffers shows the offers set aside again once NEXT has passed
// the last page (the last account, or the pairing page). a.mu is held.
func (a *Appliance) bringBackOffers(accounts int) {
	if len(a.aside) == 0 || a.focusID != "" {
		return
	}
	pages := accounts
	if a.cfg.Pairing != nil {
		if _, _, waiting := a.cfg.Pairing.PairingCode(); waiting {
			pages++
		}
	}
	if a.index >= pages {
		a.aside = nil
	}
}

// buildPairing shows "No accounts", or the pairing page (the page after
// the last account while the appliance waits to be paired); otherwise it
// settles the index on an account.
func (a *Appliance) buildPairing(f *frame, accts []vault.Account) bool {
	server, pairCode, waiting := "", "", false
	if a.cfg.Pairing != nil {
		server, pairCode, waiting = a.cfg.Pairing.PairingCode()
	}
	pages := len(accts)
	if waiting {
		pages++
	}
	if w, ok := a.cfg.Pairing.(Wiper); ok && waiting {
		if by, wiped := w.Wiped(); wiped && len(accts) == 0 {
			msg := "Replaced by " + by + ". Pair again with code " + pairCode
			if pairCode == "" {
				msg = "Replaced by " + by + ". Waiting for a pairing code"
			}
			f.scr.Title, f.scr.Message, f.st.Message = "Wiped", msg, "Wiped"
			f.show(display.ViewMessage)
			return true
		}
	}
	if pages == 0 {
		f.scr.Title, f.scr.Message = "No accounts", "Add one in the console or with totpctl"
		f.show(display.ViewMessage)
		return true
	}
	a.resolveIndex(accts, pages)
	f.st.AccountIndex = a.index
	if a.index < len(accts) {
		return false
	}
	a.mode = modeCode
	f.scr.Server, f.scr.PairingCode = server, pairCode
	f.show(display.ViewPairing)
	return true
}

// buildAccount names the account in the frame.
func (a *Appliance) buildAccount(f *frame, acct vault.Account) {
	f.st.AccountID, f.st.Label, f.st.User = acct.ID, acct.Name(), acct.User
	f.scr.Issuer, f.scr.Label, f.scr.User = acct.Issuer, acct.Label, acct.User
	if f.scr.Label == "" {
		f.scr.Label = acct.Key.Account
	}
	f.scr.Index, f.scr.Count = a.index, f.st.AccountCount
}

// buildSecret shows a pending account's QR code or secret when asked for.
// The secret of an active account is never shown.
func (a *Appliance) buildSecret(f *frame, acct vault.Account) bool {
	if acct.State != vault.Pending && (a.mode == modeQR || a.mode == modeSecret) {
		a.mode = modeCode
	}
	switch a.mode {
	case modeQR:
		f.scr.URI = acct.Key.URI()
		f.show(display.ViewQR)
		return true
	case modeSecret:
		f.scr.Secret = acct.Key.SecretBase32()
		if n := display.SecretPages(f.scr.Secret, a.size); n > 0 {
			a.page = ((a.page % n) + n) % n
		}
		f.scr.Page = a.page
		f.show(display.ViewSecret)
		return true
	}
	return false
}

// buildWithheld withholds the code while the clock is not trusted, or
// while it is hidden and not revealed.
func (a *Appliance) buildWithheld(f *frame, r clock.Reading) bool {
	if !r.State.Trusted() {
		f.scr.Reason = r.Reason
		f.show(display.ViewUntrusted)
		return true
	}
	if a.cfg.Hidden && !f.now.Before(a.revealUntil) {
		f.show(display.ViewHidden)
		return true
	}
	if a.cfg.Hidden {
		f.until(a.revealUntil)
	}
	return false
}

// buildCode shows the account's code, its countdown and, near the step's
// end, the next code; the frame wakes just after the shown second changes.
func (a *Appliance) buildCode(f *frame, acct vault.Account, r clock.Reading) {
	k := acct.Key
	step := enroll.Step(k, r.Time)
	end := enroll.StepStart(k, step+1)
	left := end.Sub(r.Time)
	// Whole seconds, rounded up: the frame changes once a second.
	secs := (left + time.Second - 1) / time.Second
	code, err := acct.CodeAt(step) // inside the TPM for an account held there
	if err != nil {
		a.cfg.Logger.Error("computing a code", "account", acct.ID, "err", err)
		f.scr.Reason = "secrets: TPM error"
		f.show(display.ViewUntrusted)
		return
	}
	f.scr.Code = code
	f.scr.Remaining, f.scr.Period = secs*time.Second, k.Period
	if left <= a.cfg.Preview {
		f.scr.NextCode, _ = acct.CodeAt(step + 1)
	}
	f.show(display.ViewCode)
	f.st.CodeShown = true
	tick := left - (secs-1)*time.Second
	if tick <= 0 {
		tick = time.Second
	}
	if d := tick + time.Millisecond; d < f.wait {
		f.wait = d
	}
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
	if t := a.takeover; t != nil {
		if b == Next {
			a.mu.Unlock() // asked once for the batch: only OK or BACK answers
			return
		}
		a.takeover = nil
		a.mu.Unlock()
		a.answerTakeover(*t, b == OK)
		return
	}
	o, offered := a.shownOffer()
	if a.message != "" && !offered {
		a.message = ""
		a.mu.Unlock()
		return
	}
	if offered && a.entry != nil && a.entry.id == o.ID {
		a.enter(o, b, now) // unlocks a.mu
		return
	}
	if offered {
		if b == OK {
			// OK asks for the sequence; an offer without one cannot be
			// accepted.
			if len(o.Sequence) > 0 {
				a.entry = &seqEntry{id: o.ID, until: now.Add(a.cfg.RevealFor)}
			}
			a.mu.Unlock()
			return
		}
		if b == Next {
			// The offer waits beside normal use: the accounts are shown,
			// and NEXT past the last one brings it back.
			if a.aside == nil {
				a.aside = map[string]bool{}
			}
			a.aside[o.ID] = true
			a.mu.Unlock()
			return
		}
		a.offers = slices.DeleteFunc(a.offers, func(p Offer) bool { return p.ID == o.ID })
		a.mu.Unlock()
		a.answerOffer(o, false)
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

// enter takes press b of the sequence being entered for o, which is shown.
// The whole sequence is checked once entered: the right one accepts o; a
// wrong one goes back to the offer screen, and the MaxWrongSequences-th
// rejects o. Which presses were right is never told. Called with a.mu
// held; it unlocks it.
func (a *Appliance) enter(o Offer, b Button, now time.Time) {
	e := a.entry
	e.presses = append(e.presses, b)
	e.until = now.Add(a.cfg.RevealFor)
	if len(e.presses) < len(o.Sequence) {
		a.mu.Unlock()
		return
	}
	a.entry = nil
	if slices.Equal(e.presses, o.Sequence) {
		a.offers = slices.DeleteFunc(a.offers, func(p Offer) bool { return p.ID == o.ID })
		a.mu.Unlock()
		a.answerOffer(o, true)
		return
	}
	if a.wrong == nil {
		a.wrong = map[string]int{}
	}
	a.wrong[o.ID]++
	if a.wrong[o.ID] < MaxWrongSequences {
		a.mu.Unlock()
		return
	}
	a.cfg.Logger.Info("offer rejected after wrong button sequences", "offer", o.ID, "tries", a.wrong[o.ID])
	a.offers = slices.DeleteFunc(a.offers, func(p Offer) bool { return p.ID == o.ID })
	a.message = MsgWrongSequence
	a.mu.Unlock()
	a.answerOffer(o, false)
}

// answerTakeover answers the takeover batch t. Called from the loop
// goroutine without a.mu held.
func (a *Appliance) answerTakeover(t Takeover, accept bool) {
	err := a.cfg.Takeovers.AnswerTakeover(t.ID, accept)
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case err != nil && errors.Is(err, ErrWithdrawn):
		a.message = "Takeover withdrawn by the server"
	case err != nil:
		a.cfg.Logger.Warn("answering a takeover failed", "err", err)
		a.message = "Could not store every account; retrying"
	case accept:
		a.message = fmt.Sprintf("Took over %d accounts from %s", t.Count, t.From)
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
		if err != nil && !errors.Is(err, ErrWithdrawn) {
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
	switch {
	case errors.Is(err, ErrWithdrawn):
		// Registered another way, expired, deleted or sent elsewhere
		// before the press: nothing is stored, and no secret is shown.
		a.cfg.Logger.Info("OK on a withdrawn offer", "offer", o.ID)
		a.message = MsgWithdrawn
		return
	case err != nil:
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
