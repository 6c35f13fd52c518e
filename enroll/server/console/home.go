package console

import "net/http"

// home sends people where they belong: those with a console role to Users, users to the
// portal, everyone else to sign in.
func (s *Console) home(w http.ResponseWriter, r *http.Request) {
	a, err := s.session(r)
	if err != nil {
		s.errorPage(w, r, nil, err)
		return
	}
	switch {
	case a == nil:
		http.Redirect(w, r, "/signin", http.StatusSeeOther)
	case a.sess.MFAPending:
		http.Redirect(w, r, "/signin/code", http.StatusSeeOther)
	case canFor(a.actor(r)).Users:
		http.Redirect(w, r, "/users", http.StatusSeeOther)
	default:
		http.Redirect(w, r, "/portal", http.StatusSeeOther)
	}
}
