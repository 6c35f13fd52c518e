package console

import (
	"fmt"
	"net/http"
)

// deviceUnlock clears a device's lockout before its time: an admin in
// the console, or the user in the portal, signed in with their password
// and a code of another device (one not locked).
func (s *Console) deviceUnlock(w http.ResponseWriter, r *http.Request, sc *scope) {
	d, ok := s.deviceForm(w, r, sc)
	if !ok {
		return
	}
	if err := s.core.UnlockDevice(r.Context(), sc.a.actor(r), sc.user, d.Device.ID); err != nil {
		s.errorPage(w, r, sc.a, err)
		return
	}
	s.setFlash(w, r, fmt.Sprintf("MFA device %q unlocked.", d.Device.Name))
	http.Redirect(w, r, sc.list(), http.StatusSeeOther)
}
