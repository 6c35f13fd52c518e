package appliance

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/totpbox/totpbox/enroll/proto"
	"github.com/totpbox/totpbox/enroll/store"
)

// handleHeld answers POST {id}/held: after a new pairing the appliance
// reports the accounts an earlier pairing placed on it (after Unpair
// while it was away, or Forget), and the server re-adopts those whose MFA
// device is active and on no other appliance: the console shows them on
// this appliance again and the sync keeps them. The appliance wipes the
// rest. Each re-adoption is audited.
func (a *API) handleHeld(w http.ResponseWriter, r *http.Request) {
	app, body, ok := a.paired(w, r)
	if !ok {
		return
	}
	ids, err := parseHeldRequest(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, proto.CodeBadRequest, err.Error())
		return
	}
	resp := proto.HeldResponse{Adopted: []string{}}
	if len(ids) == 0 {
		writeJSON(w, http.StatusOK, resp)
		return
	}
	adopted, err := a.store.AdoptDevices(r.Context(), app.ID, ids, a.clock.Now())
	switch {
	case errors.Is(err, store.ErrStale):
		// Unpairing: nothing is adopted, and the unpair that follows
		// wipes every account from the server anyway.
		writeJSON(w, http.StatusOK, resp)
		return
	case err != nil:
		a.internal(w, r, err)
		return
	}
	added := 0
	for _, d := range adopted {
		resp.Adopted = append(resp.Adopted, d.UID)
		if d.New {
			added++
			a.audit(r, app, "device.adopt", "device:"+d.UID, "held by the appliance from an earlier pairing")
		}
	}
	wiped := len(ids) - len(adopted)
	if added > 0 || wiped > 0 {
		a.audit(r, app, "appliance.reconcile", "appliance:"+app.ID,
			fmt.Sprintf("%d account(s) from an earlier pairing re-adopted, %d to be wiped", added, wiped))
	}
	a.log.Info("accounts from an earlier pairing reconciled", "appliance", app.ID, "reported", len(ids), "adopted", added, "wiped", wiped)
	writeJSON(w, http.StatusOK, resp)
}
