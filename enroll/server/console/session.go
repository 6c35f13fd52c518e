package console

import (
	"github.com/totpbox/totpbox/enroll/server/core"

	"context"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"time"

	"github.com/totpbox/totpbox/enroll/store"
)

const (
	sessionCookie = "totpserver_session"
	flashCookie   = "totpserver_flash"
	// mfaStepLifetime is how long the code step of sign-in may take.
	mfaStepLifetime = 5 * time.Minute
)

// auth is the signed-in person behind a request.
type auth struct {
	sess store.Session
	user store.User
}

func (a *auth) actor(r *http.Request) core.Actor {
	return core.Actor{Name: a.user.Username, IP: core.ClientIP(r), Role: a.role(), Sites: a.sess.Sites}
}

// role is what the signed-in person may do: the role their sign-in gave
// (from the identity provider's groups) when it gave one, else admin for
// a user with the admin flag, else none (the portal only). A stored role
// this server does not know gives none.
func (a *auth) role() core.Role {
	if a.sess.Role != "" {
		r, err := core.ParseRole(a.sess.Role)
		if err != nil {
			return ""
		}
		return r
	}
	if a.user.Admin {
		return core.RoleAdmin
	}
	return ""
}

func (s *Console) secure(r *http.Request) bool { return r.TLS != nil || s.cfg.SecureCookies }

// startSession creates a session for u and sets its cookie. mfaPending
// sessions only allow the code step of sign-in.
func (s *Console) startSession(ctx context.Context, w http.ResponseWriter, r *http.Request, u store.User, mfaPending bool) error {
	return s.startSessionAs(ctx, w, r, u, sessionSpec{mfaPending: mfaPending})
}

// sessionSpec is what a new session allows: only the code step of
// sign-in (mfaPending), or a role (limited to sites) that a sign-in
// through the identity provider gave.
type sessionSpec struct {
	mfaPending bool
	role       string
	sites      []string
}

// startSessionAs creates a session for u as spec says and sets its
// cookie.
func (s *Console) startSessionAs(ctx context.Context, w http.ResponseWriter, r *http.Request, u store.User, spec sessionSpec) error {
	mfaPending := spec.mfaPending
	now := s.clock.Now()
	life := s.cfg.SessionLifetime
	if mfaPending {
		life = mfaStepLifetime
	}
	value := core.RandomToken()
	sess := store.Session{
		Hash:       core.HashToken(value),
		UserID:     u.ID,
		Created:    now.UTC(),
		ExpiresAt:  now.Add(life).UTC(),
		CSRF:       core.RandomToken(),
		MFAPending: mfaPending,
		Role:       spec.role,
		Sites:      spec.sites,
	}
	if err := s.store.CreateSession(ctx, sess); err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{
		Name:     sessionCookie,
		Value:    value,
		Path:     "/",
		HttpOnly: true,
		Secure:   s.secure(r),
		SameSite: http.SameSiteLaxMode,
		MaxAge:   int(life / time.Second),
	})
	return nil
}

// endSession deletes the request's session and clears its cookie.
func (s *Console) endSession(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		if err := s.store.DeleteSession(r.Context(), core.HashToken(c.Value)); err != nil && !errors.Is(err, store.ErrNotFound) {
			s.log.Error("delete session", "err", err)
		}
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: s.secure(r), SameSite: http.SameSiteLaxMode})
}

// session returns the request's session and user, or nil when there is no
// valid session. The user must exist and not be disabled.
func (s *Console) session(r *http.Request) (*auth, error) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return nil, nil
	}
	sess, err := s.store.SessionByHash(r.Context(), core.HashToken(c.Value))
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if !sess.ExpiresAt.After(s.clock.Now()) {
		return nil, nil
	}
	u, err := s.store.UserByID(r.Context(), sess.UserID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if u.Disabled {
		return nil, nil
	}
	return &auth{sess: sess, user: u}, nil
}

// checkCSRF reports whether a form carries the session's CSRF token. It
// backs up http.CrossOriginProtection for browsers that send neither
// Sec-Fetch-Site nor Origin.
func checkCSRF(r *http.Request, a *auth) bool {
	t := r.PostFormValue("csrf")
	return t != "" && subtle.ConstantTimeCompare([]byte(t), []byte(a.sess.CSRF)) == 1
}

// handler is a page or action for a signed-in person.
type handler func(w http.ResponseWriter, r *http.Request, a *auth)

// signedIn wraps h so it runs only for a fully signed-in user; others are
// sent to sign in. Forms must carry the CSRF token.
func (s *Console) signedIn(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		a, err := s.session(r)
		if err != nil {
			s.errorPage(w, r, nil, err)
			return
		}
		if a == nil || a.sess.MFAPending {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/signin", http.StatusSeeOther)
				return
			}
			s.errorPage(w, r, nil, core.Fail(401, "your session has ended; sign in again"))
			return
		}
		if r.Method == http.MethodPost && !checkCSRF(r, a) {
			s.errorPage(w, r, a, core.Fail(403, "this form is out of date; reload the page and try again"))
			return
		}
		h(w, r, a)
	}
}

// admin wraps h so it runs only for a signed-in person whose role may do
// op (core.Allow: a 403 naming the role needed otherwise); while the
// settings require MFA for admins, a user with the admin flag signed in
// with a password and without an active MFA device is sent to register
// one instead.
func (s *Console) admin(op core.Op, h handler) http.HandlerFunc {
	return s.signedIn(func(w http.ResponseWriter, r *http.Request, a *auth) {
		if err := core.Allow(a.actor(r), op); err != nil {
			s.errorPage(w, r, a, err)
			return
		}
		if !a.user.Admin || a.sess.Role != "" {
			h(w, r, a)
			return
		}
		st, err := s.core.Settings(r.Context())
		if err != nil {
			s.errorPage(w, r, a, err)
			return
		}
		// An admin from the identity provider did its MFA there.
		if st.RequireAdminMFA && a.sess.Role == "" {
			has, err := s.hasMFA(r.Context(), a.user.ID)
			if err != nil {
				s.errorPage(w, r, a, err)
				return
			}
			if !has {
				if r.Method != http.MethodGet {
					s.errorPage(w, r, a, core.Fail(403, "register an MFA device first: the settings require one for admins"))
					return
				}
				s.setFlash(w, r, "Register an MFA device first: the settings require one for admins.")
				http.Redirect(w, r, "/portal/mfa-devices/new", http.StatusSeeOther)
				return
			}
		}
		h(w, r, a)
	})
}

// hasMFA reports whether the user has an active MFA device.
func (s *Console) hasMFA(ctx context.Context, userID int64) (bool, error) {
	devs, err := s.store.DevicesByUser(ctx, userID)
	if err != nil {
		return false, err
	}
	for _, d := range devs {
		if d.Status == store.StatusActive {
			return true, nil
		}
	}
	return false, nil
}

// setFlash leaves a one-line message for the next page.
func (s *Console) setFlash(w http.ResponseWriter, r *http.Request, msg string) {
	http.SetCookie(w, &http.Cookie{Name: flashCookie, Value: base64.RawURLEncoding.EncodeToString([]byte(msg)), Path: "/", HttpOnly: true, Secure: s.secure(r), SameSite: http.SameSiteLaxMode, MaxAge: 60})
}

// takeFlash reads and clears the message left by setFlash.
func (s *Console) takeFlash(w http.ResponseWriter, r *http.Request) string {
	c, err := r.Cookie(flashCookie)
	if err != nil {
		return ""
	}
	http.SetCookie(w, &http.Cookie{Name: flashCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: s.secure(r), SameSite: http.SameSiteLaxMode})
	b, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil || len(b) > 500 {
		return ""
	}
	return string(b)
}
