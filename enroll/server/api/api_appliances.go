package api

import (
	"net/http"
	"net/url"
	"time"

	"github.com/totpbox/totpbox/enroll/proto"
	"github.com/totpbox/totpbox/enroll/server/appliance"
	"github.com/totpbox/totpbox/enroll/server/core"
)

// apiAppliance is a paired appliance as the API shows it.
type apiAppliance struct {
	ID       string     `json:"id"`
	Name     string     `json:"name"`
	Paired   time.Time  `json:"paired"`
	LastSeen *time.Time `json:"last_seen,omitempty"`
	Version  string     `json:"version,omitempty"`
	Accounts int        `json:"accounts"`
	// Secrets is how the appliance keeps its secrets ("tpm" or
	// "software"), as its last sync said; absent when unknown.
	Secrets string `json:"secrets,omitempty"`
	// Unpairing says the appliance was unpaired and has not yet come back
	// to wipe its accounts.
	Unpairing bool `json:"unpairing"`
	// Online says a sync of the appliance is held by the replica that
	// answered.
	Online bool `json:"online"`
	// Clock is its last clock report; absent before the first.
	Clock *apiClockReport `json:"clock,omitempty"`
	// Warning is a one-line warning about its clock, or absent.
	Warning string `json:"warning,omitempty"`
}

// apiClockReport is an appliance's last clock report.
type apiClockReport struct {
	State          string    `json:"state"`
	OffsetSeconds  float64   `json:"offset_seconds"`
	BoundSeconds   *float64  `json:"bound_seconds"` // null when the appliance's clock has no bound
	FrequencyPPM   *float64  `json:"frequency_ppm"` // null when what was stored is not a number a sync may report
	ApplianceTime  time.Time `json:"appliance_time"`
	ReportReceived time.Time `json:"at"`
}

func toAPIAppliance(in appliance.Info) apiAppliance {
	a := apiAppliance{ID: in.ID, Name: in.Name, Paired: in.Paired.UTC(), LastSeen: optTime(in.LastSeen),
		Version: in.Version, Accounts: in.Accounts, Secrets: in.Secrets, Unpairing: in.Unpairing,
		Online: in.Online, Warning: in.Warning}
	if c := in.Clock; c != nil {
		a.Clock = &apiClockReport{State: c.State, OffsetSeconds: c.Offset.Seconds(),
			ApplianceTime: c.ApplianceTime.UTC(), ReportReceived: c.At.UTC()}
		if f := c.Frequency; proto.FrequencyFits(f) {
			a.Clock.FrequencyPPM = &f
		}
		if !c.BoundUnknown {
			b := c.Bound.Seconds()
			a.Clock.BoundSeconds = &b
		}
	}
	return a
}

type apiApplianceList struct {
	Appliances []apiAppliance `json:"appliances"`
}

// apiApplianceList is GET /api/v1/appliances.
func (s *API) apiApplianceList(w http.ResponseWriter, r *http.Request, a core.Actor) (int, any, error) {
	all, err := s.core.Appliances().Appliances(r.Context())
	if err != nil {
		return 0, nil, err
	}
	out := apiApplianceList{Appliances: make([]apiAppliance, len(all))}
	for i, in := range all {
		out.Appliances[i] = toAPIAppliance(in)
	}
	return http.StatusOK, out, nil
}

type apiAppliancePairRequest struct {
	// Code is the pairing code the appliance shows, as typed: any case,
	// spaces and dashes allowed.
	Code string `json:"code"`
	Name string `json:"name"`
}

// apiAppliancePair is POST /api/v1/appliances: it pairs the appliance
// showing the code.
func (s *API) apiAppliancePair(w http.ResponseWriter, r *http.Request, a core.Actor) (int, any, error) {
	var req apiAppliancePairRequest
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	if req.Code == "" {
		return 0, nil, core.Fail(400, "missing field \"code\": the pairing code the appliance shows")
	}
	in, err := s.core.PairAppliance(r.Context(), a, req.Code, req.Name)
	if err != nil {
		return 0, nil, err
	}
	w.Header().Set("Location", "/api/v1/appliances/"+url.PathEscape(in.ID))
	return http.StatusCreated, toAPIAppliance(in), nil
}

// apiApplianceByPath finds the appliance named in the path by id or
// name, or 404.
func (s *API) apiApplianceByPath(r *http.Request) (appliance.Info, error) {
	in, err := s.core.FindAppliance(r.Context(), r.PathValue("appliance"))
	return in, core.ApplianceFailure(err)
}

// apiApplianceGet is GET /api/v1/appliances/{appliance}.
func (s *API) apiApplianceGet(w http.ResponseWriter, r *http.Request, a core.Actor) (int, any, error) {
	in, err := s.apiApplianceByPath(r)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, toAPIAppliance(in), nil
}

type apiApplianceRenameRequest struct {
	Name string `json:"name"`
}

// apiApplianceRename is PATCH /api/v1/appliances/{appliance}: it renames
// the appliance.
func (s *API) apiApplianceRename(w http.ResponseWriter, r *http.Request, a core.Actor) (int, any, error) {
	in, err := s.apiApplianceByPath(r)
	if err != nil {
		return 0, nil, err
	}
	var req apiApplianceRenameRequest
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	if _, err := s.core.RenameAppliance(r.Context(), a, in, req.Name); err != nil {
		return 0, nil, err
	}
	in, err = s.core.Appliances().Appliance(r.Context(), in.ID)
	if err != nil {
		return 0, nil, core.ApplianceFailure(err)
	}
	return http.StatusOK, toAPIAppliance(in), nil
}

// apiApplianceUnpair is DELETE /api/v1/appliances/{appliance}: it unpairs
// the appliance. The record stays, marked unpairing, until the appliance
// comes back to wipe the accounts the server gave it.
func (s *API) apiApplianceUnpair(w http.ResponseWriter, r *http.Request, a core.Actor) (int, any, error) {
	in, err := s.apiApplianceByPath(r)
	if err != nil {
		return 0, nil, err
	}
	if err := s.core.UnpairAppliance(r.Context(), a, in); err != nil {
		return 0, nil, err
	}
	in.Unpairing = true
	return http.StatusOK, toAPIAppliance(in), nil
}
