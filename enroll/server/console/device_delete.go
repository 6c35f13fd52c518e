package console

import (
	"fmt"
	"net/http"

	"github.com/totpbox/totpbox/enroll/store"
)

// deviceDeleteShow asks to delete an MFA device, or, while it is pending,
// to cancel its registration (nothing is registered yet).
func (s *Console) deviceDeleteShow(w http.ResponseWriter, r *http.Request, sc *scope) {
	if d, ok := s.deviceForm(w, r, sc); ok {
		title := "Delete MFA device"
		if d.Device.Status != store.StatusActive {
			title = "Cancel registration"
		}
		s.render(w, r, sc.a, http.StatusOK, "device_delete", page{Title: title, Section: sc.section(), D: d})
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
	if d.Device.Status != store.StatusActive {
		s.setFlash(w, r, fmt.Sprintf("Registration of %q cancelled. Nothing was registered.", d.Device.Name))
	} else {
		s.setFlash(w, r, fmt.Sprintf("MFA device %q deleted.", d.Device.Name))
	}
	http.Redirect(w, r, sc.list(), http.StatusSeeOther)
}
