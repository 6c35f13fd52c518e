package core

import (
	"errors"
	"testing"
	"time"

	"github.com/totpbox/totpbox/enroll/server/appliance"
	"github.com/totpbox/totpbox/enroll/store"
)

// TestNext is the registration's state machine, every state against
// every event: the allowed transitions with what the appliances hear,
// and the HTTP status of each refusal.
func TestNext(t *testing.T) {
	type want struct {
		to     RegState
		tell   Tell
		status int // of the refusal; 0 when allowed
	}
	ok := func(to RegState, tell Tell) want { return want{to: to, tell: tell} }
	no := func(status int) want { return want{status: status} }
	events := []RegEvent{EvSend, EvAccept, EvReject, EvConfirm, EvExpire, EvDelete}
	table := map[RegState][]want{ //  send, accept, reject, confirm, expire, delete
		RegPending:   {ok(RegOffered, TellOffer), no(409), no(409), ok(RegActive, TellConfirmed), ok(RegExpired, TellExpire), ok(RegCancelled, TellDelete)},
		RegOffered:   {ok(RegOffered, TellOffer), ok(RegAccepted, TellNothing), ok(RegRejected, TellNothing), ok(RegActive, TellConfirmed), ok(RegExpired, TellExpire), ok(RegCancelled, TellDelete)},
		RegAccepted:  {no(409), no(409), no(409), ok(RegActive, TellConfirmed), ok(RegExpired, TellExpire), ok(RegCancelled, TellDelete)},
		RegRejected:  {ok(RegOffered, TellOffer), no(409), no(409), ok(RegActive, TellConfirmed), ok(RegExpired, TellExpire), ok(RegCancelled, TellDelete)},
		RegActive:    {no(409), no(409), no(409), no(409), no(409), ok(RegDeleted, TellDelete)},
		RegExpired:   {no(410), no(410), no(410), no(410), no(410), no(410)},
		RegCancelled: {no(404), no(404), no(404), no(404), no(404), no(404)},
		RegDeleted:   {no(404), no(404), no(404), no(404), no(404), no(404)},
	}
	for from, row := range table {
		for i, ev := range events {
			w := row[i]
			tr, err := Next(from, ev)
			var f *Failure
			switch {
			case w.status == 0 && err != nil:
				t.Errorf("Next(%s, %s) = %v, want %s telling %q", from, ev, err, w.to, w.tell)
			case w.status == 0 && (tr.To != w.to || tr.Tell != w.tell):
				t.Errorf("Next(%s, %s) = %s telling %q, want %s telling %q", from, ev, tr.To, tr.Tell, w.to, w.tell)
			case w.status != 0 && !errors.As(err, &f):
				t.Errorf("Next(%s, %s) = %s, %v; want refused with %d", from, ev, tr.To, err, w.status)
			case w.status != 0 && f.Status != w.status:
				t.Errorf("Next(%s, %s) refused with %d %q, want %d", from, ev, f.Status, f.Msg, w.status)
			}
		}
	}
	if len(table) != len(transitions)+3 { // the three terminal states have no row
		t.Errorf("the table tests %d states, the machine has %d with transitions", len(table), len(transitions))
	}
}

// TestTerminalTransitionsWithdrawTheOffer: every transition out of
// offered or accepted other than OK tells the appliances something that
// withdraws the offer (a confirm withdraws it before activating).
func TestTerminalTransitionsWithdrawTheOffer(t *testing.T) {
	for _, from := range []RegState{RegOffered, RegAccepted} {
		for _, ev := range []RegEvent{EvConfirm, EvExpire, EvDelete} {
			tr, err := Next(from, ev)
			if err != nil {
				t.Fatalf("Next(%s, %s) = %v", from, ev, err)
			}
			switch tr.Tell {
			case TellConfirmed, TellExpire, TellDelete:
			default:
				t.Errorf("Next(%s, %s) tells %q: the open offer would outlive the registration", from, ev, tr.Tell)
			}
		}
	}
}

func TestRegistrationState(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	pending := store.Device{Status: store.StatusPending, ExpiresAt: now.Add(time.Minute)}
	offer := func(state string) *appliance.OfferStatus { return &appliance.OfferStatus{State: state} }
	for _, c := range []struct {
		d     store.Device
		offer *appliance.OfferStatus
		want  RegState
	}{
		{pending, nil, RegPending},
		{pending, offer("pending"), RegOffered},
		{pending, offer("accepted"), RegAccepted},
		{pending, offer("rejected"), RegRejected},
		{pending, offer("cancelled"), RegPending},
		{pending, offer(appliance.StateExpired), RegPending},
		{store.Device{Status: store.StatusPending, ExpiresAt: now}, offer("pending"), RegExpired},
		{store.Device{Status: store.StatusActive}, offer("pending"), RegActive},
		{store.Device{Status: store.StatusActive}, nil, RegActive},
	} {
		if got := RegistrationState(c.d, c.offer, now); got != c.want {
			st := "none"
			if c.offer != nil {
				st = c.offer.State
			}
			t.Errorf("RegistrationState(%s expiring %v, offer %s) = %s, want %s", c.d.Status, c.d.ExpiresAt, st, got, c.want)
		}
	}
}
