package console

import (
	"github.com/totpbox/totpbox/enroll/server/core"

	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/totpbox/totpbox/enroll/store"
)

type signinData struct {
	Username string
	// SSO is the identity provider's name when OIDC is configured;
	// SSODown says it has not answered discovery.
	SSO     string
	SSODown bool
	// Local shows the password form; BreakGlassOnly says it is for
	// local admins alone (allow_local_signin: false).
	Local          bool
	BreakGlassOnly bool
}

// signinPage renders the sign-in page with the ways to sign in this
// request has, and msg as its error.
func (s *Console) signinPage(w http.ResponseWriter, r *http.Request, status int, msg, username string) {
	d := signinData{Username: username, Local: true}
	if s.ssoOn() {
		d.SSO = s.cfg.OIDC.DisplayName()
		d.SSODown = !s.cfg.OIDC.Available()
		d.Local = s.localSigninFrom(r)
		d.BreakGlassOnly = !s.cfg.OIDC.Config().AllowLocalSignin
	}
	s.render(w, r, nil, status, "signin", page{Title: "Sign in", Error: msg, D: d})
}

func (s *Console) signinShow(w http.ResponseWriter, r *http.Request) {
	a, err := s.session(r)
	if err == nil && a != nil && !a.sess.MFAPending {
		s.home(w, r)
		return
	}
	s.signinPage(w, r, http.StatusOK, "", "")
}

// breakGlass reports whether a local password sign-in of u is a
// break-glass one: an admin's while OIDC is configured.
func (s *Console) breakGlass(u store.User) bool { return s.ssoOn() && u.Admin }

func (s *Console) signinSubmit(w http.ResponseWriter, r *http.Request) {
	username := r.PostFormValue("username")
	password := r.PostFormValue("password")
	ip := core.ClientIP(r)
	retry := func(status int, msg string) {
		s.signinPage(w, r, status, msg, username)
	}
	name, err := core.CleanUsername(username)
	if err != nil || password == "" {
		retry(http.StatusBadRequest, "Type your username and password.")
		return
	}
	if s.ssoOn() && !s.localSigninFrom(r) {
		s.core.Audit(r.Context(), core.Actor{Name: name, IP: ip}, "signin.fail", "user:"+name, "local sign-in from an address outside oidc.local_signin_from")
		retry(http.StatusForbidden, "Local sign-in is not allowed from your address. Sign in with "+s.cfg.OIDC.DisplayName()+".")
		return
	}
	now := s.clock.Now()
	device := s.trustedDevice(r, name, now)
	if limited, wait := s.signinLimited(name, ip, device, now); limited {
		s.refused.add(name, ip, now)
		sec := retryAfter(w, wait)
		retry(http.StatusTooManyRequests, fmt.Sprintf("Too many sign-in attempts. Try again in %d seconds.", sec))
		return
	}
	u, err := s.store.UserByName(r.Context(), name)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.errorPage(w, r, nil, err)
		return
	}
	if s.ssoOn() && !s.cfg.OIDC.Config().AllowLocalSignin && !(err == nil && u.Admin) {
		s.core.Audit(r.Context(), core.Actor{Name: name, IP: ip}, "signin.fail", "user:"+name, "local password of a user while oidc.allow_local_signin is false")
		retry(http.StatusForbidden, "Local passwords are off here. Sign in with "+s.cfg.OIDC.DisplayName()+".")
		return
	}
	release := s.hashing.acquire(r.Context(), device != "")
	if release == nil {
		s.log.Warn("sign-in refused: every password check is busy", "addr", ip)
		retryAfter(w, time.Second)
		retry(http.StatusServiceUnavailable, "The server is busy. Try again in a second.")
		return
	}
	good, perr := s.core.VerifyPassword(r.Context(), u, err == nil, password)
	release()
	if errors.Is(perr, core.ErrDirectoryUnavailable) {
		s.core.Audit(r.Context(), core.Actor{Name: name, IP: ip}, "signin.fail", "user:"+name, "the directory could not check the password")
		retry(http.StatusServiceUnavailable, "Your password cannot be checked right now: the directory does not answer. Try again later.")
		return
	}
	if perr != nil {
		s.errorPage(w, r, nil, perr)
		return
	}
	if !good || u.Disabled {
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
	if s.breakGlass(u) && !needCode {
		s.core.Audit(r.Context(), core.Actor{Name: name, IP: ip}, "signin.fail", "user:"+name, "break-glass sign-in of an admin without an active MFA device")
		retry(http.StatusForbidden, "A local admin signs in with a password and an MFA code while single sign-on is on; you have no MFA device. Sign in with "+s.cfg.OIDC.DisplayName()+".")
		return
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
	s.trustDevice(w, r, u.Username)
	s.core.Audit(r.Context(), core.Actor{Name: u.Username, IP: ip}, "signin", "user:"+u.Username, "password")
	if u.Admin {
		http.Redirect(w, r, "/users", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/portal", http.StatusSeeOther)
}
