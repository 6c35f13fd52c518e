package console

import (
	"github.com/totpbox/totpbox/enroll/server/core"

	"fmt"
	"net/http"

	"github.com/totpbox/totpbox/enroll/store"
)

// deviceFormData is what the Rename, Resync and Delete pages show.
type deviceFormData struct {
	User   store.User
	Base   string
	List   string
	Portal bool
	Device store.Device
	Name   string
	Window int
	// HOTPWindow is how far ahead a resync of an HOTP device looks.
	HOTPWindow int
}

func (s *Console) deviceForm(w http.ResponseWriter, r *http.Request, sc *scope) (deviceFormData, bool) {
	dev, ok := s.pendingDevice(w, r, sc)
	if !ok {
		return deviceFormData{}, false
	}
	return deviceFormData{User: sc.user, Base: sc.base, List: sc.list(), Portal: sc.portal, Device: dev, Name: dev.Name, Window: s.core.ResyncWindow(),
		HOTPWindow: s.core.HOTPResyncWindow()}, true
}

func (s *Console) deviceRenameShow(w http.ResponseWriter, r *http.Request, sc *scope) {
	if d, ok := s.deviceForm(w, r, sc); ok {
		s.render(w, r, sc.a, http.StatusOK, "device_rename", page{Title: "Rename MFA device", Section: sc.section(), D: d})
	}
}

func (s *Console) deviceRenameSubmit(w http.ResponseWriter, r *http.Request, sc *scope) {
	d, ok := s.deviceForm(w, r, sc)
	if !ok {
		return
	}
	name := r.PostFormValue("name")
	dev, err := s.core.RenameDevice(r.Context(), sc.a.actor(r), sc.user, d.Device.ID, name)
	if err != nil {
		status, msg := core.Explain(err)
		if status >= http.StatusInternalServerError || status == http.StatusNotFound {
			s.errorPage(w, r, sc.a, err)
			return
		}
		d.Name = name
		s.render(w, r, sc.a, status, "device_rename", page{Title: "Rename MFA device", Section: sc.section(), Error: msg, Field: errorField(msg, nameField), D: d})
		return
	}
	s.setFlash(w, r, fmt.Sprintf("MFA device renamed to %q.", dev.Name))
	http.Redirect(w, r, sc.list(), http.StatusSeeOther)
}
