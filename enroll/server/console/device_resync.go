package console

import (
	"github.com/totpbox/totpbox/enroll/server/core"

	"fmt"
	"net/http"
)

func (s *Console) deviceResyncShow(w http.ResponseWriter, r *http.Request, sc *scope) {
	if d, ok := s.deviceForm(w, r, sc); ok {
		s.render(w, r, sc.a, http.StatusOK, "device_resync", page{Title: "Resync MFA device", Section: sc.section(), D: d})
	}
}

// deviceResyncSubmit brings an out-of-sync device back with two
// consecutive codes.
func (s *Console) deviceResyncSubmit(w http.ResponseWriter, r *http.Request, sc *scope) {
	d, ok := s.deviceForm(w, r, sc)
	if !ok {
		return
	}
	codes := []string{r.PostFormValue("code1"), r.PostFormValue("code2")}
	dev, err := s.core.ResyncDevice(r.Context(), sc.a.actor(r), sc.user, d.Device.ID, codes)
	if err != nil {
		status, msg := core.Explain(err)
		if status >= http.StatusInternalServerError || status == http.StatusNotFound {
			s.errorPage(w, r, sc.a, err)
			return
		}
		s.render(w, r, sc.a, status, "device_resync", page{Title: "Resync MFA device", Section: sc.section(), Error: msg, Field: errorField(msg, codeFields...), D: d})
		return
	}
	s.setFlash(w, r, fmt.Sprintf("MFA device %q resynced; its clock is %+d s from the server's.", dev.Name, dev.DriftSteps*int64(dev.PeriodSec)))
	http.Redirect(w, r, sc.list(), http.StatusSeeOther)
}
