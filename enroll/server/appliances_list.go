package server

import (
	"fmt"
	"net/http"

	"github.com/totpbox/totpbox/enroll/server/appliance"
)

// appliancesData is the Appliances page: the paired appliances and the
// "Pair appliance" form, with what was typed when it failed.
type appliancesData struct {
	Appliances []appliance.Info
	Code       string
	Name       string
}

func (s *Server) appliancesPage(w http.ResponseWriter, r *http.Request, a *auth, status int, d appliancesData, msg string) {
	list, err := s.appliances.Appliances(r.Context())
	if err != nil {
		s.errorPage(w, r, a, err)
		return
	}
	d.Appliances = list
	s.render(w, r, a, status, "appliances", page{Title: "Appliances", Section: "appliances", Error: msg, D: d})
}

// appliancesShow lists the paired appliances.
func (s *Server) appliancesShow(w http.ResponseWriter, r *http.Request, a *auth) {
	s.appliancesPage(w, r, a, http.StatusOK, appliancesData{}, "")
}

// appliancePair pairs the appliance showing the typed code under the
// typed name.
func (s *Server) appliancePair(w http.ResponseWriter, r *http.Request, a *auth) {
	d := appliancesData{Code: r.PostFormValue("code"), Name: r.PostFormValue("name")}
	name, err := cleanApplianceName(d.Name)
	if err == nil {
		var in appliance.Info
		in, err = s.appliances.Pair(r.Context(), d.Code, name)
		if err == nil {
			s.audit(r.Context(), a.actor(r), "appliance.pair", "appliance:"+in.ID, fmt.Sprintf("paired %q (version %s)", in.Name, in.Version))
			s.setFlash(w, r, fmt.Sprintf("Appliance %q paired. It shows that it is paired at its next sync.", in.Name))
			http.Redirect(w, r, "/appliances", http.StatusSeeOther)
			return
		}
		err = applianceFailure(err)
	}
	status, msg := explain(err)
	if status == http.StatusInternalServerError {
		s.errorPage(w, r, a, err)
		return
	}
	s.appliancesPage(w, r, a, status, d, msg)
}
