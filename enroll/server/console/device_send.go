package console

import (
	"github.com/totpbox/totpbox/enroll/server/core"

	"fmt"
	"net/http"
)

// deviceSend is "Send to appliance" on the Device configuration page: the
// pending registration becomes an offer on the chosen appliance, where a
// button press accepts it. The page then shows where the offer stands;
// the code form stays.
func (s *Console) deviceSend(w http.ResponseWriter, r *http.Request, sc *scope) {
	dev, ok := s.pendingDevice(w, r, sc)
	if !ok {
		return
	}
	err := s.core.CheckPending(dev)
	if err == nil {
		in, ferr := s.core.ApplianceFor(r.Context(), sc.a.actor(r), r.PostFormValue("appliance"))
		if ferr != nil {
			err = core.ApplianceFailure(ferr)
		} else if err = s.core.SendOffer(r.Context(), sc.a.actor(r), sc.user, dev, in); err == nil {
			s.setFlash(w, r, fmt.Sprintf("Sent to appliance %q. Press on it the buttons the status line shows to accept the registration.", in.Name))
			http.Redirect(w, r, fmt.Sprintf("%s/mfa-devices/%d/configure", sc.base, dev.ID), http.StatusSeeOther)
			return
		}
	}
	status, msg := core.Explain(err)
	switch status {
	case http.StatusInternalServerError, http.StatusServiceUnavailable:
		s.errorPage(w, r, sc.a, err)
		return
	case http.StatusConflict:
		if err == core.ErrAlreadyActive {
			s.setFlash(w, r, fmt.Sprintf("MFA device %q is already registered.", dev.Name))
			http.Redirect(w, r, sc.list(), http.StatusSeeOther)
			return
		}
	}
	s.renderConfigure(w, r, sc, dev, status, msg)
}
