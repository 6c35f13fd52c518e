package console

import (
	"net/http"

	"github.com/totpbox/totpbox/enroll/server/appliance"
	"github.com/totpbox/totpbox/enroll/server/core"
	"github.com/totpbox/totpbox/enroll/store"
)

// placedAccount is one account the server placed on an appliance.
type placedAccount struct {
	User   store.User
	Device store.Device
}

// applianceData is an appliance's page: what it reported, and the
// accounts the server placed on it.
type applianceData struct {
	Appliance appliance.Info
	Placed    []placedAccount
	Chart     clockChart
	// Replacements are those the appliance is part of, newest first.
	Replacements []appliance.Replacement
	// Replacing reports that one of them is open.
	Replacing bool
}

// applianceShow is an appliance's page. It lists the MFA devices whose
// offer the appliance accepted (and that were not withdrawn from it
// since); accounts added on the appliance itself are not the server's to
// see, and the page says so.
func (s *Console) applianceShow(w http.ResponseWriter, r *http.Request, a *auth) {
	f, ok := s.applianceForm(w, r, a)
	if !ok {
		return
	}
	rng := r.URL.Query().Get(chartRangeParam)
	if rng == "" {
		rng = chartDefaultRange
	}
	if _, ok := chartRanges[rng]; !ok {
		s.errorPage(w, r, a, core.Fail(http.StatusBadRequest, "The chart's range must be 24h or 7d."))
		return
	}
	now := s.clock.Now()
	samples, threshold, err := s.core.Appliances().ClockHistory(r.Context(), f.Appliance.ID, now.Add(-chartRanges[rng]))
	if err != nil {
		s.errorPage(w, r, a, core.ApplianceFailure(err))
		return
	}
	devs, err := s.store.DevicesOnAppliance(r.Context(), f.Appliance.ID)
	if err != nil {
		s.errorPage(w, r, a, err)
		return
	}
	d := applianceData{Appliance: f.Appliance, Chart: newClockChart(pageChart, samples, threshold, rng, now)}
	if d.Replacements, err = s.core.Appliances().Replacements(r.Context(), f.Appliance.ID); err != nil {
		s.errorPage(w, r, a, err)
		return
	}
	for _, rep := range d.Replacements {
		d.Replacing = d.Replacing || rep.Open()
	}
	users := map[int64]store.User{}
	for _, dev := range devs {
		u, ok := users[dev.UserID]
		if !ok {
			if u, err = s.store.UserByID(r.Context(), dev.UserID); err != nil {
				s.errorPage(w, r, a, err)
				return
			}
			users[dev.UserID] = u
		}
		d.Placed = append(d.Placed, placedAccount{User: u, Device: dev})
	}
	s.render(w, r, a, http.StatusOK, "appliance", page{Title: f.Appliance.Name, Section: "appliances", D: d})
}
