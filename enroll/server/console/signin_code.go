package console

import (
	"github.com/totpbox/totpbox/enroll/server/core"

	"fmt"
	"math"
	"net/http"
)

// pendingSignin returns the session of someone between the password and
// the code steps of sign-in, or sends them back to the start.
func (s *Console) pendingSignin(w http.ResponseWriter, r *http.Request) *auth {
	a, err := s.session(r)
	if err != nil {
		s.errorPage(w, r, nil, err)
		return nil
	}
	if a == nil {
		http.Redirect(w, r, "/signin", http.StatusSeeOther)
		return nil
	}
	if !a.sess.MFAPending {
		s.home(w, r)
		return nil
	}
	return a
}

func (s *Console) signinCodeShow(w http.ResponseWriter, r *http.Request) {
	if a := s.pendingSignin(w, r); a != nil {
		s.render(w, r, nil, http.StatusOK, "signin_code", page{Title: "Type your MFA code", CSRF: a.sess.CSRF})
	}
}

func (s *Console) signinCodeSubmit(w http.ResponseWriter, r *http.Request) {
	a := s.pendingSignin(w, r)
	if a == nil {
		return
	}
	retry := func(status int, msg string) {
		s.render(w, r, nil, status, "signin_code", page{Title: "Type your MFA code", CSRF: a.sess.CSRF, Error: msg})
	}
	if !checkCSRF(r, a) {
		retry(http.StatusForbidden, "This form is out of date; try again.")
		return
	}
	code, err := core.CleanCode(r.PostFormValue("code"))
	if err != nil {
		retry(http.StatusBadRequest, "The "+err.Error()+".")
		return
	}
	who := a.actor(r)
	res, err := s.core.Verify(r.Context(), who, a.user.Username, code, who.IP)
	if err != nil {
		s.errorPage(w, r, nil, err)
		return
	}
	if !res.OK {
		if res.RetryAfter > 0 {
			sec := int(math.Ceil(res.RetryAfter.Seconds()))
			w.Header().Set("Retry-After", fmt.Sprint(sec))
			retry(http.StatusTooManyRequests, fmt.Sprintf("Too many attempts. Try again in %d seconds.", sec))
			return
		}
		s.core.Audit(r.Context(), who, "signin.fail", "user:"+a.user.Username, "MFA code: "+res.Reason)
		retry(http.StatusUnauthorized, "That code was not accepted: "+res.Reason+".")
		return
	}
	s.endSession(w, r)
	if err := s.startSession(r.Context(), w, r, a.user, false); err != nil {
		s.errorPage(w, r, nil, err)
		return
	}
	s.trustDevice(w, r, a.user.Username)
	switch {
	case s.viaSSO(r, a):
		s.core.Audit(r.Context(), who, "signin", "user:"+a.user.Username, "oidc and MFA code")
	case s.breakGlass(a.user) && a.sess.Role == "":
		s.core.Audit(r.Context(), who, "signin.breakglass", "user:"+a.user.Username, "local admin: password and MFA code while oidc is configured")
	default:
		s.core.Audit(r.Context(), who, "signin", "user:"+a.user.Username, "password and MFA code")
	}
	if a.user.Admin {
		http.Redirect(w, r, "/users", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/portal", http.StatusSeeOther)
}
