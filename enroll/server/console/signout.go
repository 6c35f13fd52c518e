package console

import (
	"net/http"
)

// signout ends the session. It needs no CSRF token: signing someone out
// from another site is harmless, and http.CrossOriginProtection refuses it
// anyway. A session from the identity provider goes on to its logout
// (RP-initiated logout) when it offers one.
func (s *Console) signout(w http.ResponseWriter, r *http.Request) {
	if a, err := s.session(r); err == nil && a != nil {
		s.core.Audit(r.Context(), a.actor(r), "signout", "user:"+a.user.Username, "")
	}
	s.endSession(w, r)
	if to := s.oidcLogout(w, r); to != "" {
		http.Redirect(w, r, to, http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/signin", http.StatusSeeOther)
}
