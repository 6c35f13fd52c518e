package console

import (
	"github.com/totpbox/totpbox/enroll/server/core"

	"fmt"
	"net/http"
)

// applianceUnpairShow asks to confirm unpairing.
func (s *Console) applianceUnpairShow(w http.ResponseWriter, r *http.Request, a *auth) {
	if d, ok := s.applianceForm(w, r, a); ok {
		s.render(w, r, a, http.StatusOK, "appliance_unpair", page{Title: "Unpair appliance", Section: "appliances", D: d})
	}
}

// applianceUnpairSubmit unpairs the appliance: its offers are withdrawn
// and, at its next sync, it wipes every account the server delivered.
func (s *Console) applianceUnpairSubmit(w http.ResponseWriter, r *http.Request, a *auth) {
	d, ok := s.applianceForm(w, r, a)
	if !ok {
		return
	}
	if err := s.core.UnpairAppliance(r.Context(), a.actor(r), d.Appliance); err != nil {
		s.errorPage(w, r, a, err)
		return
	}
	s.setFlash(w, r, fmt.Sprintf("Appliance %q unpaired. At its next sync it wipes every account it received from this server.", d.Appliance.Name))
	http.Redirect(w, r, "/appliances", http.StatusSeeOther)
}

// applianceForgetShow asks to confirm forgetting an appliance that was
// unpaired but never came back to say so.
func (s *Console) applianceForgetShow(w http.ResponseWriter, r *http.Request, a *auth) {
	if d, ok := s.applianceForm(w, r, a); ok {
		s.render(w, r, a, http.StatusOK, "appliance_forget", page{Title: "Forget appliance", Section: "appliances", D: d})
	}
}

// applianceForgetSubmit removes the appliance's record at once.
func (s *Console) applianceForgetSubmit(w http.ResponseWriter, r *http.Request, a *auth) {
	d, ok := s.applianceForm(w, r, a)
	if !ok {
		return
	}
	if err := s.core.Appliances().Forget(r.Context(), d.Appliance.ID); err != nil {
		s.errorPage(w, r, a, core.ApplianceFailure(err))
		return
	}
	s.core.Audit(r.Context(), a.actor(r), "appliance.forget", "appliance:"+d.Appliance.ID, fmt.Sprintf("forgot %q", d.Appliance.Name))
	s.setFlash(w, r, fmt.Sprintf("Appliance %q forgotten.", d.Appliance.Name))
	http.Redirect(w, r, "/appliances", http.StatusSeeOther)
}
