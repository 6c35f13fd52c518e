package console

import (
	"github.com/totpbox/totpbox/enroll/server/core"

	"net/http"
	"net/url"
)

// userPassword sets a user's portal password.
func (s *Console) userPassword(w http.ResponseWriter, r *http.Request, a *auth) {
	u, ok := s.userByPath(w, r, a)
	if !ok {
		return
	}
	if err := s.core.SetPassword(r.Context(), a.actor(r), u, r.PostFormValue("password")); err != nil {
		status, msg := core.Explain(err)
		if status >= http.StatusInternalServerError {
			s.errorPage(w, r, a, err)
			return
		}
		d, err := s.profile(r, u)
		if err != nil {
			s.errorPage(w, r, a, err)
			return
		}
		s.render(w, r, a, status, "user", page{Title: u.Username, Section: "users", Error: msg, Field: errorField(msg, [2]string{"password", "password"}), D: d})
		return
	}
	s.setFlash(w, r, "Password set for "+u.Username+".")
	http.Redirect(w, r, "/users/"+url.PathEscape(u.Username), http.StatusSeeOther)
}
