package console

import (
	"github.com/totpbox/totpbox/enroll/server/core"

	"fmt"
	"net/http"

	"github.com/totpbox/totpbox/enroll/server/appliance"
)

// applianceFormData is what the Rename, Unpair and Forget pages of an
// appliance show.
type applianceFormData struct {
	Appliance appliance.Info
	Name      string
	// Site is the site as typed on the Rename page.
	Site string
}

// applianceForm loads the appliance of the path, or shows why it cannot.
func (s *Console) applianceForm(w http.ResponseWriter, r *http.Request, a *auth) (applianceFormData, bool) {
	in, err := s.core.ApplianceFor(r.Context(), a.actor(r), r.PathValue("appliance"))
	if err != nil {
		s.errorPage(w, r, a, core.ApplianceFailure(err))
		return applianceFormData{}, false
	}
	return applianceFormData{Appliance: in, Name: in.Name, Site: in.Site}, true
}

func (s *Console) applianceRenameShow(w http.ResponseWriter, r *http.Request, a *auth) {
	if d, ok := s.applianceForm(w, r, a); ok {
		s.render(w, r, a, http.StatusOK, "appliance_rename", page{Title: "Rename appliance", Section: "appliances", D: d})
	}
}

func (s *Console) applianceRenameSubmit(w http.ResponseWriter, r *http.Request, a *auth) {
	d, ok := s.applianceForm(w, r, a)
	if !ok {
		return
	}
	d.Name, d.Site = r.PostFormValue("name"), r.PostFormValue("site")
	_, hasSite := r.PostForm["site"]
	// The site is checked first, so a bad one changes nothing.
	_, err := core.CleanSite(d.Site)
	var name string
	if err == nil {
		name, err = s.core.RenameAppliance(r.Context(), a.actor(r), d.Appliance, d.Name)
	}
	if err == nil && hasSite {
		_, err = s.core.SetApplianceSite(r.Context(), a.actor(r), d.Appliance, d.Site)
	}
	if err != nil {
		status, msg := core.Explain(err)
		if status >= http.StatusInternalServerError || status == http.StatusNotFound {
			s.errorPage(w, r, a, err)
			return
		}
		s.render(w, r, a, status, "appliance_rename", page{Title: "Rename appliance", Section: "appliances", Error: msg, Field: errorField(msg, [2]string{"site", "site"}, [2]string{"name", "name"}), D: d})
		return
	}
	s.setFlash(w, r, fmt.Sprintf("Appliance renamed to %q.", name))
	http.Redirect(w, r, "/appliances", http.StatusSeeOther)
}
