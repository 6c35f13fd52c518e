package console

import (
	"fmt"
	"net/http"
)

func (s *Console) deviceDeleteShow(w http.ResponseWriter, r *http.Request, sc *scope) {
	if d, ok := s.deviceForm(w, r, sc); ok {
		s.render(w, r, sc.a, http.StatusOK, "device_delete", page{Title: "Delete MFA device", Section: sc.section(), D: d})
	}
}

func (s *Console) deviceDeleteSubmit(w http.ResponseWriter, r *http.Request, sc *scope) {
	d, ok := s.deviceForm(w, r, sc)
	if !ok {
		return
	}
	if err := s.core.DeleteDevice(r.Context(), sc.a.actor(r), sc.user, d.Device.ID); err != nil {
		s.errorPage(w, r, sc.a, err)
		return
	}
	s.setFlash(w, r, fmt.Sprintf("MFA device %q deleted.", d.Device.Name))
	http.Redirect(w, r, sc.list(), http.StatusSeeOther)
}
