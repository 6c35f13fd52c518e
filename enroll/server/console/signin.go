package console

import (
	"github.com/totpbox/totpbox/enroll/server/core"

	"errors"
	"fmt"
	"math"
	"net/http"

	"github.com/totpbox/totpbox/enroll/store"
)

type signinData struct {
	Username string
}

func (s *Console) signinShow(w http.ResponseWriter, r *http.Request) {
	a, err := s.session(r)
	if err == nil && a != nil && !a.sess.MFAPending {
		s.home(w, r)
		return
	}
	s.render(w, r, nil, http.StatusOK, "signin", page{Title: "Sign in", D: signinData{}})
}

func (s *Console) signinSubmit(w http.ResponseWriter, r *http.Request) {
	username := r.PostFormValue("username")
	password := r.PostFormValue("password")
	ip := core.ClientIP(r)
	retry := func(status int, msg string) {
		s.render(w, r, nil, status, "signin", page{Title: "Sign in", Error: msg, D: signinData{Username: username}})
	}
	name, err := core.CleanUsername(username)
	if err != nil || password == "" {
		retry(http.StatusBadRequest, "Type your username and password.")
		return
	}
	now := s.clock.Now()
	okIP, waitIP := s.signinIP.Allow(ip, now)
	okUser, waitUser := s.signinUser.Allow(name, now)
	if !okIP || !okUser {
		wait := max(waitIP, waitUser)
		s.core.Audit(r.Context(), core.Actor{Name: name, IP: ip}, "signin.limited", "user:"+name, "too many sign-in attempts")
		w.Header().Set("Retry-After", fmt.Sprint(int(math.Ceil(wait.Seconds()))))
		retry(http.StatusTooManyRequests, fmt.Sprintf("Too many sign-in attempts. Try again in %d seconds.", int(math.Ceil(wait.Seconds()))))
		return
	}
	u, err := s.store.UserByName(r.Context(), name)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.errorPage(w, r, nil, err)
		return
	}
	if !core.CheckUserPassword(u, err == nil, password) || u.Disabled {
		s.core.Audit(r.Context(), core.Actor{Name: name, IP: ip}, "signin.fail", "user:"+name, "wrong username or password, or user disabled")
		retry(http.StatusUnauthorized, "Wrong username or password.")
		return
	}
	devs, err := s.store.DevicesByUser(r.Context(), u.ID)
	if err != nil {
		s.errorPage(w, r, nil, err)
		return
	}
	needCode := false
	for _, d := range devs {
		needCode = needCode || d.Status == store.StatusActive
	}
	s.endSession(w, r)
	if err := s.startSession(r.Context(), w, r, u, needCode); err != nil {
		s.errorPage(w, r, nil, err)
		return
	}
	if needCode {
		http.Redirect(w, r, "/signin/code", http.StatusSeeOther)
		return
	}
	s.core.Audit(r.Context(), core.Actor{Name: u.Username, IP: ip}, "signin", "user:"+u.Username, "password")
	if u.Admin {
		http.Redirect(w, r, "/users", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/portal", http.StatusSeeOther)
}
