package console

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/totpbox/totpbox/enroll/server/appliance"
	"github.com/totpbox/totpbox/enroll/server/core"
	"github.com/totpbox/totpbox/enroll/store"
)

// offerStatus is where a registration's offer stands, as the Device
// configuration page shows it and as its status endpoint answers, so
// that static/status.js can update the page without a reload.
type offerStatus struct {
	// State is the registration's state (core.RegState).
	State string `json:"state"`
	// Class is the CSS class of the status line: the offer's state, or
	// the registration's once it ended.
	Class string `json:"class"`
	// Text is the status line.
	Text string `json:"text"`
	// Sequence is the button sequence that accepts a pending offer on the
	// appliance, as Text words it ("OK, then NEXT BACK NEXT OK"): shown
	// only here, it proves the person at the appliance sees the console.
	Sequence string `json:"sequence,omitempty"`
	// Done: the registration is no longer waiting (active or expired);
	// the page stops asking.
	Done bool `json:"done"`
}

// describeOffer words where the offer o of a registration in state st
// stands; the zero offerStatus when it was never sent.
func describeOffer(st core.RegState, o *appliance.OfferStatus) offerStatus {
	out := offerStatus{State: string(st)}
	switch st {
	case core.RegActive:
		out.Class, out.Done = "active", true
		out.Text = "This MFA device was registered meanwhile, by its code."
		if o != nil && o.State == string(store.ChangeCancelled) {
			out.Text += fmt.Sprintf(" Its offer to “%s” was withdrawn: it is on no appliance.", o.ApplianceName)
		}
		return out
	case core.RegExpired:
		out.Class, out.Done = "expired", true
		out.Text = "This registration expired; start again."
		return out
	}
	if o == nil {
		return offerStatus{}
	}
	out.Class = o.State
	switch o.State {
	case string(store.ChangePending):
		out.Sequence = o.SequenceText()
		out.Text = fmt.Sprintf("Sent to “%s” at %s: on the appliance press %s.", o.ApplianceName, o.Sent.UTC().Format(core.TimeLayout), out.Sequence)
		if out.Sequence == "" {
			out.Text = fmt.Sprintf("Sent to “%s” at %s: it cannot be accepted there; send it again.", o.ApplianceName, o.Sent.UTC().Format(core.TimeLayout))
		}
	case string(store.ChangeAccepted):
		out.Text = fmt.Sprintf("Accepted on “%s”: now type the code the appliance shows.", o.ApplianceName)
	case string(store.ChangeRejected):
		out.Text = fmt.Sprintf("Rejected on the appliance “%s”. Send it again, or use the QR code.", o.ApplianceName)
	case appliance.StateExpired:
		out.Text = fmt.Sprintf("The offer to “%s” expired.", o.ApplianceName)
	default:
		name := o.ApplianceName
		if name == "" {
			name = "an appliance no longer paired"
		}
		out.Text = fmt.Sprintf("The offer to “%s” was withdrawn.", name)
	}
	return out
}

// deviceStatus answers GET .../mfa-devices/{id}/status with the
// registration's offerStatus as JSON, never a secret.
func (s *Console) deviceStatus(w http.ResponseWriter, r *http.Request, sc *scope) {
	var out offerStatus
	id, err := core.PathID(r)
	if err == nil {
		var d store.Device
		if d, err = s.core.UserDevice(r.Context(), sc.user, id); err == nil {
			p := s.core.Placement(r.Context(), d)
			out = describeOffer(p.State, p.Offer)
		}
	}
	if err != nil {
		status, msg := core.Explain(err)
		if status != http.StatusGone {
			http.Error(w, msg, status)
			return
		}
		out = offerStatus{State: string(core.RegExpired), Class: "expired", Text: capitalize(msg) + ".", Done: true}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	json.NewEncoder(w).Encode(out)
}
