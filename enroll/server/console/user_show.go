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
	// Link is where the user comes from: Source "" for a local user.
	Link store.DirectoryLink
	// Source names Link's identity source for people ("the LDAP
	// directory"); empty for a local user.
	Source string
	Base   string
	Tab    string
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
	d, err := s.profile(r, u)
	if err != nil {
		s.errorPage(w, r, a, err)
		return
	}
	d.Verify = newVerifyChart(verifyGeom, days, now)
	s.render(w, r, a, http.StatusOK, "user", page{Title: u.Username, Section: "users", D: d})
}

// profile is the data of u's Profile tab but for the verify chart: the
// user and where they come from.
func (s *Console) profile(r *http.Request, u store.User) (userData, error) {
	l, err := s.core.UserLink(r.Context(), u)
	if err != nil {
		return userData{}, err
	}
	d := userData{User: u, Link: l, Base: "/users/" + url.PathEscape(u.Username), Tab: "profile"}
	if l.Source != "" {
		d.Source = core.SourceTitle(l.Source)
	}
	return d, nil
}
