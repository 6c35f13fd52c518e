package console

import (
	"github.com/totpbox/totpbox/enroll/server/core"

	"errors"
	"net/http"
	"net/url"

	"github.com/totpbox/totpbox/enroll/store"
)

// scope is whose MFA devices a device page works on, and from where: an
// admin in the console working on any user, or a user in the portal
// working on their own.
type scope struct {
	a      *auth
	user   store.User // the owner of the devices
	base   string     // "/users/alice" or "/portal"
	portal bool
}

// list is the URL of the page listing the devices.
func (sc *scope) list() string {
	if sc.portal {
		return sc.base
	}
	return sc.base + "/mfa-devices"
}

func (sc *scope) section() string {
	if sc.portal {
		return "portal"
	}
	return "users"
}

// scoped is a device page or action.
type scoped func(w http.ResponseWriter, r *http.Request, sc *scope)

// console returns a wrapper that runs h for a person whose role may do
// op, on the user named in the path.
func (s *Console) console(op core.Op) func(h scoped) http.HandlerFunc {
	return func(h scoped) http.HandlerFunc { return s.consoleFor(op, h) }
}

// consoleFor runs h for a person whose role may do op, on the user named
// in the path.
func (s *Console) consoleFor(op core.Op, h scoped) http.HandlerFunc {
	return s.admin(op, func(w http.ResponseWriter, r *http.Request, a *auth) {
		name := r.PathValue("username")
		u, err := s.store.UserByName(r.Context(), name)
		if errors.Is(err, store.ErrNotFound) {
			s.errorPage(w, r, a, core.Fail(404, "no user %q", name))
			return
		}
		if err != nil {
			s.errorPage(w, r, a, err)
			return
		}
		h(w, r, &scope{a: a, user: u, base: "/users/" + url.PathEscape(u.Username)})
	})
}

// portal runs h for a signed-in user on their own devices, only while the
// setting lets users manage their own MFA devices; admins always manage
// their own.
func (s *Console) portal(h scoped) http.HandlerFunc {
	return s.portalOwn(func(w http.ResponseWriter, r *http.Request, sc *scope) {
		st, err := s.core.Settings(r.Context())
		if err != nil {
			s.errorPage(w, r, sc.a, err)
			return
		}
		if !st.SelfService && !sc.a.user.Admin {
			s.errorPage(w, r, sc.a, core.Fail(403, "managing your own MFA devices is turned off; ask an admin"))
			return
		}
		h(w, r, sc)
	})
}

// adminsOwn runs h in the portal for an admin or the help desk only:
// appliances are theirs.
func (s *Console) adminsOwn(h scoped) scoped {
	return func(w http.ResponseWriter, r *http.Request, sc *scope) {
		if err := core.Allow(sc.a.actor(r), core.OpManageDevices); err != nil {
			s.errorPage(w, r, sc.a, err)
			return
		}
		h(w, r, sc)
	}
}

// portalOwn runs h for a signed-in user on their own devices, whatever
// the setting: for resync and unlock, which recover a device rather than
// manage it. Signed in means the password and a code of an MFA device,
// so a device locked until unlocked is unlocked with another one.
func (s *Console) portalOwn(h scoped) http.HandlerFunc {
	return s.signedIn(func(w http.ResponseWriter, r *http.Request, a *auth) {
		h(w, r, &scope{a: a, user: a.user, base: "/portal", portal: true})
	})
}
