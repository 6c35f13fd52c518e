package console

import (
	"net/http"
	"net/url"
)

func (s *Console) userDisable(w http.ResponseWriter, r *http.Request, a *auth) {
	s.userSetDisabled(w, r, a, true)
}

func (s *Console) userEnable(w http.ResponseWriter, r *http.Request, a *auth) {
	s.userSetDisabled(w, r, a, false)
}

func (s *Console) userSetDisabled(w http.ResponseWriter, r *http.Request, a *auth, disabled bool) {
	u, ok := s.userByPath(w, r, a)
	if !ok {
		return
	}
	if err := s.core.SetDisabled(r.Context(), a.actor(r), u, disabled); err != nil {
		s.errorPage(w, r, a, err)
		return
	}
	if disabled {
		s.setFlash(w, r, "User "+u.Username+" disabled: they cannot sign in and their codes are refused.")
	} else {
		s.setFlash(w, r, "User "+u.Username+" enabled.")
	}
	http.Redirect(w, r, "/users/"+url.PathEscape(u.Username), http.StatusSeeOther)
}
