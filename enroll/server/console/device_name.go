package console

import (
	"github.com/totpbox/totpbox/enroll/server/core"

	"fmt"
	"net/http"

	"github.com/totpbox/totpbox/enroll/store"
)

// deviceNameData is step 1 of "Register MFA device": the Device name page.
type deviceNameData struct {
	User   store.User
	Base   string
	List   string
	Portal bool
	Name   string
	Kind   string
}

func (s *Console) deviceNameShow(w http.ResponseWriter, r *http.Request, sc *scope) {
	// A name in the query is kept from a registration that expired
	// ("Start again").
	d := deviceNameData{User: sc.user, Base: sc.base, List: sc.list(), Portal: sc.portal, Kind: string(store.KindAuthenticatorApp), Name: r.URL.Query().Get("name")}
	s.render(w, r, sc.a, http.StatusOK, "device_name", page{Title: "Register MFA device", Section: sc.section(), D: d})
}

// deviceNameSubmit creates the pending registration and moves on to the
// Device configuration page.
func (s *Console) deviceNameSubmit(w http.ResponseWriter, r *http.Request, sc *scope) {
	name, kind := r.PostFormValue("name"), r.PostFormValue("kind")
	dev, _, err := s.core.StartRegistration(r.Context(), sc.a.actor(r), sc.user, name, store.DeviceKind(kind))
	if err != nil {
		status, msg := core.Explain(err)
		if status >= http.StatusInternalServerError {
			s.errorPage(w, r, sc.a, err)
			return
		}
		d := deviceNameData{User: sc.user, Base: sc.base, List: sc.list(), Portal: sc.portal, Name: name, Kind: kind}
		s.render(w, r, sc.a, status, "device_name", page{Title: "Register MFA device", Section: sc.section(), Error: msg, Field: errorField(msg, nameField), D: d})
		return
	}
	http.Redirect(w, r, fmt.Sprintf("%s/mfa-devices/%d/configure", sc.base, dev.ID), http.StatusSeeOther)
}
