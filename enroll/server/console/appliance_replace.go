package console

import (
	"fmt"
	"net/http"

	"github.com/totpbox/totpbox/enroll/server/appliance"
	"github.com/totpbox/totpbox/enroll/server/core"
)

// applianceReplaceData is the "Replace with…" page: the appliance and the
// paired spares that may replace it.
type applianceReplaceData struct {
	Appliance appliance.Info
	Spares    []appliance.Info
	With      string
}

// applianceReplaceForm loads the appliance and the spares to choose from:
// every other paired appliance not being unpaired.
func (s *Console) applianceReplaceForm(w http.ResponseWriter, r *http.Request, a *auth) (applianceReplaceData, bool) {
	f, ok := s.applianceForm(w, r, a)
	if !ok {
		return applianceReplaceData{}, false
	}
	all, err := s.core.Appliances().Appliances(r.Context())
	if err != nil {
		s.errorPage(w, r, a, err)
		return applianceReplaceData{}, false
	}
	d := applianceReplaceData{Appliance: f.Appliance}
	for _, in := range all {
		if in.ID != f.Appliance.ID && !in.Unpairing {
			d.Spares = append(d.Spares, in)
		}
	}
	return d, true
}

// applianceReplaceShow is "Replace with…": choose a paired spare.
func (s *Console) applianceReplaceShow(w http.ResponseWriter, r *http.Request, a *auth) {
	if d, ok := s.applianceReplaceForm(w, r, a); ok {
		s.render(w, r, a, http.StatusOK, "appliance_replace", page{Title: "Replace appliance", Section: "appliances", D: d})
	}
}

// applianceReplaceSubmit begins (or resumes) the replacement and shows
// the appliance's page, where its progress is.
func (s *Console) applianceReplaceSubmit(w http.ResponseWriter, r *http.Request, a *auth) {
	d, ok := s.applianceReplaceForm(w, r, a)
	if !ok {
		return
	}
	d.With = r.PostFormValue("with")
	var spare appliance.Info
	var err error
	if d.With == "" {
		err = core.Fail(http.StatusBadRequest, "choose the spare that replaces %q", d.Appliance.Name)
	} else {
		spare, err = s.core.FindAppliance(r.Context(), d.With)
	}
	var rep appliance.Replacement
	if err == nil {
		rep, err = s.core.ReplaceAppliance(r.Context(), a.actor(r), d.Appliance, spare)
	}
	if err != nil {
		status, msg := core.Explain(err)
		if status >= http.StatusInternalServerError {
			s.errorPage(w, r, a, err)
			return
		}
		s.render(w, r, a, status, "appliance_replace", page{Title: "Replace appliance", Section: "appliances", Error: msg, Field: "with", D: d})
		return
	}
	s.setFlash(w, r, fmt.Sprintf("Replacing %q by %q: %d of %d account(s) moved. The spare asks to take them over: press OK on it.",
		rep.OldName, rep.SpareName, rep.Moved(), len(rep.Accounts)))
	http.Redirect(w, r, "/appliances/"+d.Appliance.ID, http.StatusSeeOther)
}
