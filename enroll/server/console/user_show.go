package console

import (
	"github.com/totpbox/totpbox/enroll/server/core"

	"errors"
	"net/http"
	"net/url"

	"github.com/totpbox/totpbox/enroll/store"
)

type userData struct {
	User store.User
	Base string
	Tab  string
	// Verify is the user's verify activity chart (Profile tab only).
	Verify verifyChart
}

// userByPath loads the user named in the path, or shows 404.
func (s *Console) userByPath(w http.ResponseWriter, r *http.Request, a *auth) (store.User, bool) {
	name := r.PathValue("username")
	u, err := s.store.UserByName(r.Context(), name)
	if errors.Is(err, store.ErrNotFound) {
		err = core.Fail(404, "no user %q", name)
	}
	if err != nil {
		s.errorPage(w, r, a, err)
		return store.User{}, false
	}
	return u, true
}

// userShow is a user's Profile tab: details, disable or enable, password.
func (s *Console) userShow(w http.ResponseWriter, r *http.Request, a *auth) {
	u, ok := s.userByPath(w, r, a)
	if !ok {
		return
	}
	now := s.clock.Now()
	days, err := s.store.VerifyDays(r.Context(), u.ID, now.AddDate(0, 0, -verifyChartDays))
	if err != nil {
		s.errorPage(w, r, a, err)
		return
	}
	s.render(w, r, a, http.StatusOK, "user", page{Title: u.Username, Section: "users", D: userData{User: u, Base: "/users/" + url.PathEscape(u.Username), Tab: "profile", Verify: newVerifyChart(verifyGeom, days, now)}})
}
