package core

import (
	"context"
	"net/http"
	"time"

	"github.com/totpbox/totpbox/enroll/server/appliance"
	"github.com/totpbox/totpbox/enroll/store"
)

// RegState is where a registration (the life of one MFA device) stands.
// Every path that changes a registration — console, portal, admin API,
// appliance API, janitor — moves it through Next, the one table of
// transitions:
//
//	pending ──send──▶ offered ──OK on the appliance──▶ accepted
//	   │  ▲              │ └──BACK──▶ rejected (send again, or use a code)
//	   │  └─send elsewhere┘
//	   └──────── confirm (a correct code, by any path) ────────▶ active
//
//	pending, offered, accepted, rejected ──time──▶ expired
//	pending, offered, accepted, rejected ──delete──▶ cancelled
//	active ──delete──▶ deleted
//
// Expired, cancelled and deleted are terminal. Leaving offered or
// accepted for anything but accepted or active withdraws the offer (or
// wipes the pending account) at the appliance's next sync; a confirm by
// another path while offered withdraws the offer too, and the MFA device
// is then on no appliance.
type RegState string

// Registration states.
const (
	RegPending   RegState = "pending"   // waiting for a code; on no appliance
	RegOffered   RegState = "offered"   // sent to an appliance, waiting for OK there
	RegAccepted  RegState = "accepted"  // OK pressed: the appliance shows the code to type
	RegRejected  RegState = "rejected"  // BACK pressed: still waiting for a code
	RegActive    RegState = "active"    // registered: codes verify
	RegExpired   RegState = "expired"   // not confirmed in time (terminal)
	RegCancelled RegState = "cancelled" // deleted before it was confirmed (terminal)
	RegDeleted   RegState = "deleted"   // deleted after it was confirmed (terminal)
)

// RegEvent is something that happens to a registration.
type RegEvent string

// Registration events.
const (
	EvSend    RegEvent = "send"    // the admin sends it to an appliance
	EvAccept  RegEvent = "accept"  // OK pressed on the appliance
	EvReject  RegEvent = "reject"  // BACK pressed on the appliance
	EvConfirm RegEvent = "confirm" // a correct code typed (console, portal or API)
	EvExpire  RegEvent = "expire"  // its time ran out
	EvDelete  RegEvent = "delete"  // the admin (or user) deleted it
)

// Tell is what the appliances holding or offered an MFA device hear
// about a transition.
type Tell string

// What a transition tells the appliances.
const (
	// TellNothing: no appliance is involved.
	TellNothing Tell = ""
	// TellOffer: the offer is queued for the chosen appliance; an open
	// offer on another appliance is withdrawn.
	TellOffer Tell = "offer"
	// TellConfirmed: an open offer is withdrawn (an OK pressed on it
	// shows a one-line message, never the secret) and the account of the
	// appliance that accepted it becomes active.
	TellConfirmed Tell = "confirmed"
	// TellExpire: the offer is withdrawn and a pending account wiped.
	TellExpire Tell = "expire"
	// TellDelete: the offer is withdrawn and the account wiped.
	TellDelete Tell = "delete"
)

// Transition is one allowed move of the table.
type Transition struct {
	To   RegState
	Tell Tell
}

// waiting are the states of a registration that still waits for its code.
var waiting = []RegState{RegPending, RegOffered, RegAccepted, RegRejected}

// transitions is the table: from state, on event, to state with what the
// appliances hear. A pair missing from it is refused.
var transitions = func() map[RegState]map[RegEvent]Transition {
	t := map[RegState]map[RegEvent]Transition{}
	for _, s := range waiting {
		t[s] = map[RegEvent]Transition{
			EvConfirm: {RegActive, TellConfirmed},
			EvExpire:  {RegExpired, TellExpire},
			EvDelete:  {RegCancelled, TellDelete},
		}
	}
	// An accepted offer holds the account on its appliance: sending it
	// elsewhere is refused (delete it and start again instead).
	for _, s := range []RegState{RegPending, RegOffered, RegRejected} {
		t[s][EvSend] = Transition{RegOffered, TellOffer}
	}
	t[RegOffered][EvAccept] = Transition{RegAccepted, TellNothing}
	t[RegOffered][EvReject] = Transition{RegRejected, TellNothing}
	t[RegActive] = map[RegEvent]Transition{EvDelete: {RegDeleted, TellDelete}}
	return t
}()

// Next returns the transition of a registration in state from on event,
// or a Failure saying why the event is refused there.
func Next(from RegState, ev RegEvent) (Transition, error) {
	if tr, ok := transitions[from][ev]; ok {
		return tr, nil
	}
	return Transition{}, refusal(from, ev)
}

// refusal is the one-line reason an event is refused in a state.
func refusal(from RegState, ev RegEvent) error {
	switch from {
	case RegActive:
		if ev == EvAccept {
			return Fail(http.StatusConflict, "this MFA device was registered meanwhile; its offer was withdrawn")
		}
		return ErrAlreadyActive
	case RegExpired:
		return Fail(http.StatusGone, "this registration expired; start again")
	case RegCancelled, RegDeleted:
		return Fail(http.StatusNotFound, "this MFA device was deleted")
	case RegAccepted:
		if ev == EvSend {
			return ApplianceFailure(appliance.ErrOnAnother)
		}
	}
	switch ev {
	case EvAccept, EvReject:
		return Fail(http.StatusConflict, "this registration is not offered to an appliance; its offer was withdrawn")
	}
	return Fail(http.StatusConflict, "a registration that is %s cannot %s", from, ev)
}

// RegistrationState derives the state of d from its row and the latest
// offer of it (nil when it was never sent to an appliance) at now.
func RegistrationState(d store.Device, offer *appliance.OfferStatus, now time.Time) RegState {
	if d.Status == store.StatusActive {
		return RegActive
	}
	if !d.ExpiresAt.After(now) {
		return RegExpired
	}
	if offer == nil {
		return RegPending
	}
	switch offer.State {
	case string(store.ChangePending):
		return RegOffered
	case string(store.ChangeAccepted):
		return RegAccepted
	case string(store.ChangeRejected):
		return RegRejected
	}
	return RegPending // withdrawn or lapsed: on no appliance
}

// registrationState reads where d stands now. When the appliance change
// log cannot be read it logs and counts that, and answers from the row
// alone: an appliance's trouble never blocks a person's action (the tells
// that follow still try to reach the appliances).
func (s *Core) registrationState(ctx context.Context, d store.Device) (RegState, *appliance.OfferStatus, error) {
	if d.Status == store.StatusActive {
		return RegActive, nil, nil
	}
	p := s.Placement(ctx, d)
	return p.State, p.Offer, nil
}

// RegistrationState returns where the registration d stands, with its
// latest offer (nil when never sent), for pages that show it.
func (s *Core) RegistrationState(ctx context.Context, d store.Device) (RegState, *appliance.OfferStatus, error) {
	return s.registrationState(ctx, d)
}

// tellTransition makes the appliances hear tr for d. Like tell, it logs
// and counts a failure rather than returning it: the transition has
// already happened. TellOffer is SendOffer's own work.
func (s *Core) tellTransition(ctx context.Context, tr Transition, d store.Device) {
	switch tr.Tell {
	case TellConfirmed:
		s.withdraw(ctx, d)
		s.tell(ctx, store.ChangeActivate, d)
	case TellExpire:
		s.tell(ctx, store.ChangeExpire, d)
	case TellDelete:
		s.tell(ctx, store.ChangeDelete, d)
	}
}

// withdraw withdraws the open (unanswered) offer of d, if any.
func (s *Core) withdraw(ctx context.Context, d store.Device) {
	ctx = context.WithoutCancel(ctx)
	if err := s.appliances.CancelOffer(ctx, d.UID); err != nil {
		s.metrics.hookErrors.WithLabelValues(string(store.ChangeCancel)).Inc()
		s.log.Error("open offer not withdrawn", "device", d.ID, "err", err)
	}
}

// Placement is where an MFA device stands with the appliances, for the
// device tables of the console and the API.
type Placement struct {
	// State is the registration's state.
	State RegState
	// Offer is its latest offer; nil when it was never sent.
	Offer *appliance.OfferStatus
	// Appliance names the appliance holding its account (the one that
	// accepted its offer); empty when none does.
	Appliance string
	// Withdrawn: registered by another path while offered, so the offer
	// was withdrawn and the MFA device is active on no appliance.
	Withdrawn bool
}

// Placement returns where d stands with the appliances. When the
// appliance change log cannot be read it answers from d alone, as
// registrationState does.
func (s *Core) Placement(ctx context.Context, d store.Device) Placement {
	o, err := s.OfferState(ctx, d)
	if err != nil {
		s.metrics.hookErrors.WithLabelValues("state").Inc()
		s.log.Error("offer state of an MFA device not read", "device", d.ID, "err", err)
		o = nil
	}
	p := Placement{State: RegistrationState(d, o, s.clock.Now()), Offer: o}
	if o == nil {
		return p
	}
	switch {
	case o.State == string(store.ChangeAccepted):
		p.Appliance = o.ApplianceName
	case d.Status == store.StatusActive && o.State == string(store.ChangeCancelled) && d.Kind != store.KindAppliance:
		p.Withdrawn = true
	}
	return p
}
