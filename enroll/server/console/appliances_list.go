package console

import (
	"github.com/totpbox/totpbox/enroll/server/core"

	"fmt"
	"net/http"

	"github.com/totpbox/totpbox/enroll/server/appliance"
)

// appliancesData is the Appliances page: the paired appliances and the
// "Pair appliance" form, with what was typed when it failed.
type appliancesData struct {
	Appliances []appliance.Info
	// Sparks are the appliances' clock sparklines over 24 h, by ID.
	Sparks map[string]clockChart
	Code   string
	Name   string
}

func (s *Console) appliancesPage(w http.ResponseWriter, r *http.Request, a *auth, status int, d appliancesData, msg string) {
	list, err := s.core.Appliances().Appliances(r.Context())
	if err != nil {
		s.errorPage(w, r, a, err)
		return
	}
	list = core.VisibleAppliances(a.actor(r), list)
	d.Appliances = list
	now := s.clock.Now()
	d.Sparks = make(map[string]clockChart, len(list))
	for _, in := range list {
		samples, threshold, err := s.core.Appliances().ClockHistory(r.Context(), in.ID, now.Add(-chartRanges[chartDefaultRange]))
		if err != nil {
			continue // forgotten meanwhile, or the store failed: the row shows without its sparkline
		}
		d.Sparks[in.ID] = newClockChart(sparkChart, samples, threshold, chartDefaultRange, now)
	}
	s.render(w, r, a, status, "appliances", page{Title: "Appliances", Section: "appliances", Wide: true, Error: msg, Field: errorField(msg, [2]string{"name", "appliance name"}, [2]string{"code", "code"}), D: d})
}

// appliancesShow lists the paired appliances.
func (s *Console) appliancesShow(w http.ResponseWriter, r *http.Request, a *auth) {
	s.appliancesPage(w, r, a, http.StatusOK, appliancesData{}, "")
}

// appliancePair pairs the appliance showing the typed code under the
// typed name.
func (s *Console) appliancePair(w http.ResponseWriter, r *http.Request, a *auth) {
	d := appliancesData{Code: r.PostFormValue("code"), Name: r.PostFormValue("name")}
	in, err := s.core.PairAppliance(r.Context(), a.actor(r), d.Code, d.Name)
	if err == nil {
		s.setFlash(w, r, fmt.Sprintf("Appliance %q paired. It shows that it is paired at its next sync.", in.Name))
		http.Redirect(w, r, "/appliances", http.StatusSeeOther)
		return
	}
	status, msg := core.Explain(err)
	if status >= http.StatusInternalServerError {
		s.errorPage(w, r, a, err)
		return
	}
	s.appliancesPage(w, r, a, status, d, msg)
}
