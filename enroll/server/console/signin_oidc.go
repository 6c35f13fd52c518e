package console

import (
	"github.com/totpbox/totpbox/enroll/server/core"

	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/totpbox/totpbox/enroll/server/oidc"
	"github.com/totpbox/totpbox/enroll/store"
)

const (
	// oidcCookie carries a sign-in under way at the provider: its state,
	// nonce and PKCE verifier, signed, for oidcStateLifetime.
	oidcCookie        = "totpserver_oidc"
	oidcStateLifetime = 10 * time.Minute
	oidcPurpose       = "oidc-state"
	// idTokenCookie keeps the ID token of an OIDC sign-in for the
	// provider's logout (id_token_hint), on the sign-out path only.
	idTokenCookie = "totpserver_idt"
	// maxIDTokenCookie is the longest ID token kept; a longer one (many
	// groups) is dropped and logout goes without the hint.
	maxIDTokenCookie = 3500
)

// oidcState is what oidcCookie holds.
type oidcState struct {
	oidc.Request
	Expires int64 `json:"exp"`
}

// ssoOn reports whether OIDC sign-in is configured.
func (s *Console) ssoOn() bool { return s.cfg.OIDC != nil }

// localSigninFrom reports whether local password sign-in is allowed from
// the request's address (local_signin_from).
func (s *Console) localSigninFrom(r *http.Request) bool {
	if len(s.localFrom) == 0 {
		return true
	}
	a, err := netip.ParseAddr(core.ClientIP(r))
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, p := range s.localFrom {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// signinOIDC sends the browser to the provider with a fresh state, nonce
// and PKCE challenge, whose secrets it keeps in a signed cookie.
func (s *Console) signinOIDC(w http.ResponseWriter, r *http.Request) {
	req := oidc.NewRequest()
	to, err := s.cfg.OIDC.AuthCodeURL(req)
	if err != nil {
		s.signinPage(w, r, http.StatusServiceUnavailable, "Single sign-on is unavailable right now: the identity provider does not answer.", "")
		return
	}
	st := oidcState{Request: req, Expires: s.clock.Now().Add(oidcStateLifetime).Unix()}
	msg, _ := json.Marshal(st)
	enc := base64.RawURLEncoding
	http.SetCookie(w, &http.Cookie{
		Name:     oidcCookie,
		Value:    enc.EncodeToString(msg) + "." + enc.EncodeToString(s.deviceKeys.MAC(oidcPurpose, msg)),
		Path:     "/signin",
		HttpOnly: true,
		Secure:   s.secure(r),
		// Lax: the provider's redirect back is a top-level GET from
		// another site.
		SameSite: http.SameSiteLaxMode,
		MaxAge:   int(oidcStateLifetime / time.Second),
	})
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// takeOIDCState reads and clears the signed sign-in state, or returns why
// it is not there.
func (s *Console) takeOIDCState(w http.ResponseWriter, r *http.Request) (oidcState, string) {
	http.SetCookie(w, &http.Cookie{Name: oidcCookie, Value: "", Path: "/signin", MaxAge: -1, HttpOnly: true, Secure: s.secure(r), SameSite: http.SameSiteLaxMode})
	var st oidcState
	c, err := r.Cookie(oidcCookie)
	if err != nil || len(c.Value) > 2048 {
		return st, "no sign-in under way in this browser (state cookie missing)"
	}
	enc := base64.RawURLEncoding
	m, t, _ := strings.Cut(c.Value, ".")
	msg, err1 := enc.DecodeString(m)
	tag, err2 := enc.DecodeString(t)
	if err1 != nil || err2 != nil || !s.deviceKeys.CheckMAC(oidcPurpose, msg, tag) || json.Unmarshal(msg, &st) != nil {
		return st, "the sign-in state cookie is tampered with"
	}
	if s.clock.Now().Unix() > st.Expires {
		return st, "the sign-in took longer than " + oidcStateLifetime.String()
	}
	return st, ""
}

// signinOIDCCallback is where the provider sends the browser back: the
// state must be this browser's and unused, the code is exchanged and the
// ID token verified; then the groups give a console role, or an existing
// user goes on to the portal (with a code from their MFA device, as
// after a password). Every refusal is one audit line.
func (s *Console) signinOIDCCallback(w http.ResponseWriter, r *http.Request) {
	ip := core.ClientIP(r)
	q := r.URL.Query()
	refuse := func(who, reason, msg string) {
		s.core.Audit(r.Context(), core.Actor{Name: who, IP: ip}, "signin.fail", "oidc", reason)
		s.signinPage(w, r, http.StatusForbidden, msg, "")
	}
	st, bad := s.takeOIDCState(w, r)
	switch {
	case bad != "":
		refuse("", bad, "That sign-in cannot be finished here. Start again.")
		return
	case q.Get("state") != st.State:
		refuse("", "the state sent back is not this browser's (tampered)", "That sign-in cannot be finished here. Start again.")
		return
	}
	// Single use, on every replica: the state is recorded until it would
	// have expired anyway.
	if err := s.store.UseNonce(r.Context(), oidcPurpose, st.State, time.Unix(st.Expires, 0)); errors.Is(err, store.ErrConflict) {
		refuse("", "the state was used before (replayed)", "That sign-in was finished already. Start again.")
		return
	} else if err != nil {
		s.errorPage(w, r, nil, err)
		return
	}
	if e := q.Get("error"); e != "" {
		refuse("", "the provider answered "+clip(e, 64), "The identity provider did not sign you in.")
		return
	}
	id, err := s.cfg.OIDC.Exchange(r.Context(), q.Get("code"), st.Request)
	var no *oidc.Refused
	if errors.As(err, &no) {
		refuse("", no.Reason, "The identity provider's answer was not accepted. Start again.")
		return
	}
	if err != nil {
		s.log.Warn("oidc sign-in: the provider does not answer", "err", err)
		s.signinPage(w, r, http.StatusBadGateway, "The identity provider does not answer. Try again later.", "")
		return
	}
	name, err := core.CleanUsername(id.Username)
	if err != nil {
		refuse("", "the username claim is not a username here", "Your identity provider account has no username this server accepts.")
		return
	}
	if !id.HasGroups {
		refuse(name, "the ID token has no "+s.cfg.OIDC.Config().GroupsClaim+" claim", "Your identity provider sent no groups: ask your administrator.")
		return
	}
	grant, hasRole := s.cfg.OIDC.Config().RoleFor(id.Groups)
	u, err := s.store.UserByName(r.Context(), name)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.errorPage(w, r, nil, err)
		return
	}
	exists := err == nil
	switch {
	case exists && u.Disabled:
		refuse(name, "the user is disabled", "Your account is disabled here.")
		return
	case !hasRole && !exists:
		refuse(name, "no group in role_map and no user of that name", "Your groups give you no role here, and you have no account.")
		return
	case !hasRole && u.Admin:
		// A session without a role falls back to the admin flag: the
		// groups must say what an admin may do.
		refuse(name, "a local admin whose groups give no role", "Your groups give you no role here.")
		return
	case hasRole && !exists:
		u, err = s.core.CreateUser(r.Context(), core.Actor{Name: "oidc", IP: ip, Role: core.RoleAdmin}, core.NewUser{Username: name, DisplayName: name})
		if err != nil {
			s.errorPage(w, r, nil, err)
			return
		}
	}
	s.endSession(w, r)
	sess := sessionSpec{}
	if hasRole {
		sess.role, sess.sites = grant.Role, grant.Sites
	} else {
		needCode, err := s.hasMFA(r.Context(), u.ID)
		if err != nil {
			s.errorPage(w, r, nil, err)
			return
		}
		sess.mfaPending = needCode
	}
	if err := s.startSessionAs(r.Context(), w, r, u, sess); err != nil {
		s.errorPage(w, r, nil, err)
		return
	}
	if len(id.IDToken) <= maxIDTokenCookie {
		http.SetCookie(w, &http.Cookie{Name: idTokenCookie, Value: id.IDToken, Path: "/signout", HttpOnly: true, Secure: s.secure(r), SameSite: http.SameSiteLaxMode, MaxAge: int(s.cfg.SessionLifetime / time.Second)})
	}
	if sess.mfaPending {
		s.markSSOPending(w, r, u)
		http.Redirect(w, r, "/signin/code", http.StatusSeeOther)
		return
	}
	detail := "oidc"
	if hasRole {
		detail = "oidc as " + grant.Role
		if len(grant.Sites) > 0 {
			detail += "@" + strings.Join(grant.Sites, ",")
		}
	}
	s.core.Audit(r.Context(), core.Actor{Name: u.Username, IP: ip}, "signin", "user:"+u.Username, detail)
	if hasRole {
		http.Redirect(w, r, "/users", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/portal", http.StatusSeeOther)
}

// oidcLogout returns where sign-out sends the browser: the provider's
// end_session_endpoint with the ID token as hint when the session came
// from it and the provider offers logout, else "".
func (s *Console) oidcLogout(w http.ResponseWriter, r *http.Request) string {
	if !s.ssoOn() {
		return ""
	}
	c, err := r.Cookie(idTokenCookie)
	if err != nil || c.Value == "" {
		return ""
	}
	http.SetCookie(w, &http.Cookie{Name: idTokenCookie, Value: "", Path: "/signout", MaxAge: -1, HttpOnly: true, Secure: s.secure(r), SameSite: http.SameSiteLaxMode})
	after := ""
	if u, err := url.Parse(s.cfg.OIDC.Config().RedirectURL); err == nil {
		after = (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: "/signin"}).String()
	}
	return s.cfg.OIDC.LogoutURL(c.Value, after)
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// ssoPendingCookie says, for the audit, that the code step follows a
// sign-in through the provider rather than a password: a tag over the
// pending session's CSRF token, so it names that session alone.
const (
	ssoPendingCookie  = "totpserver_sso_pending"
	ssoPendingPurpose = "oidc-pending"
)

// markSSOPending tags the pending session just started for u as one from
// the provider.
func (s *Console) markSSOPending(w http.ResponseWriter, r *http.Request, u store.User) {
	c, err := s.sessionCookieOf(w)
	if err != nil {
		return
	}
	sess, err := s.store.SessionByHash(r.Context(), core.HashToken(c))
	if err != nil || sess.UserID != u.ID {
		return
	}
	tag := s.deviceKeys.MAC(ssoPendingPurpose, []byte(sess.CSRF))
	http.SetCookie(w, &http.Cookie{Name: ssoPendingCookie, Value: base64.RawURLEncoding.EncodeToString(tag), Path: "/signin/code", HttpOnly: true, Secure: s.secure(r), SameSite: http.SameSiteStrictMode, MaxAge: int(mfaStepLifetime / time.Second)})
}

// viaSSO reports whether the pending session a came from the provider.
func (s *Console) viaSSO(r *http.Request, a *auth) bool {
	c, err := r.Cookie(ssoPendingCookie)
	if err != nil {
		return false
	}
	tag, err := base64.RawURLEncoding.DecodeString(c.Value)
	return err == nil && s.deviceKeys.CheckMAC(ssoPendingPurpose, []byte(a.sess.CSRF), tag)
}

// sessionCookieOf returns the session cookie value just set on w.
func (s *Console) sessionCookieOf(w http.ResponseWriter) (string, error) {
	for _, line := range w.Header().Values("Set-Cookie") {
		if c, err := http.ParseSetCookie(line); err == nil && c.Name == sessionCookie && c.Value != "" {
			return c.Value, nil
		}
	}
	return "", errors.New("no session cookie set")
}
