package api

import (
	"errors"
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
	// Site is the site it belongs to; absent for none.
	Site string `json:"site,omitempty"`
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
		Online: in.Online, Warning: in.Warning, Site: in.Site}
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
	all = core.VisibleAppliances(a, all)
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
// name, or 404; 403 when a may not see it.
func (s *API) apiApplianceByPath(r *http.Request, a core.Actor) (appliance.Info, error) {
	in, err := s.core.ApplianceFor(r.Context(), a, r.PathValue("appliance"))
	return in, core.ApplianceFailure(err)
}

// apiApplianceGet is GET /api/v1/appliances/{appliance}.
func (s *API) apiApplianceGet(w http.ResponseWriter, r *http.Request, a core.Actor) (int, any, error) {
	in, err := s.apiApplianceByPath(r, a)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, toAPIAppliance(in), nil
}

// apiApplianceChangeRequest is what PATCH changes: the name, the site
// (empty for none), or both; a field left out stays as it is.
type apiApplianceChangeRequest struct {
	Name *string `json:"name"`
	Site *string `json:"site"`
}

// apiApplianceRename is PATCH /api/v1/appliances/{appliance}: it renames
// the appliance and sets its site.
func (s *API) apiApplianceRename(w http.ResponseWriter, r *http.Request, a core.Actor) (int, any, error) {
	in, err := s.apiApplianceByPath(r, a)
	if err != nil {
		return 0, nil, err
	}
	var req apiApplianceChangeRequest
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	if req.Name == nil && req.Site == nil {
		return 0, nil, core.Fail(400, "nothing to change: give \"name\", \"site\" or both")
	}
	if req.Site != nil {
		if _, err := core.CleanSite(*req.Site); err != nil {
			return 0, nil, err
		}
	}
	if req.Name != nil {
		if _, err := s.core.RenameAppliance(r.Context(), a, in, *req.Name); err != nil {
			return 0, nil, err
		}
	}
	if req.Site != nil {
		if _, err := s.core.SetApplianceSite(r.Context(), a, in, *req.Site); err != nil {
			return 0, nil, err
		}
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
	in, err := s.apiApplianceByPath(r, a)
	if err != nil {
		return 0, nil, err
	}
	if err := s.core.UnpairAppliance(r.Context(), a, in); err != nil {
		return 0, nil, err
	}
	in.Unpairing = true
	return http.StatusOK, toAPIAppliance(in), nil
}

type apiApplianceReplaceRequest struct {
	// With is the spare, by id or name: another paired appliance.
	With string `json:"with"`
}

// apiApplianceRef names an appliance in a replacement.
type apiApplianceRef struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// apiReplacementAccount is one account of a replacement.
type apiReplacementAccount struct {
	// DeviceUID is the MFA device's UID.
	DeviceUID string `json:"device_uid"`
	// Moved is when the spare confirmed storing it; absent until then.
	Moved *time.Time `json:"moved,omitempty"`
}

// apiReplacement is a replacement of an appliance by a spare.
type apiReplacement struct {
	ID    string          `json:"id"`
	Old   apiApplianceRef `json:"old"`
	Spare apiApplianceRef `json:"spare"`
	// State is waiting (the spare has not taken every account over yet),
	// declined (BACK on the spare: resume with the same request) or done.
	State    string                  `json:"state"`
	Total    int                     `json:"total"`
	Moved    int                     `json:"moved"`
	Accounts []apiReplacementAccount `json:"accounts"`
	// NotMoved lists, one line each, what stays on the old appliance:
	// offers, pending registrations, local accounts.
	NotMoved []string  `json:"not_moved"`
	Created  time.Time `json:"created"`
	Updated  time.Time `json:"updated"`
}

func toAPIReplacement(r appliance.Replacement) apiReplacement {
	out := apiReplacement{ID: r.ID, Old: apiApplianceRef{r.OldID, r.OldName}, Spare: apiApplianceRef{r.SpareID, r.SpareName},
		State: string(r.State), Total: len(r.Accounts), Moved: r.Moved(), Accounts: make([]apiReplacementAccount, len(r.Accounts)),
		NotMoved: r.NotMoved, Created: r.Created.UTC(), Updated: r.Updated.UTC()}
	if out.NotMoved == nil {
		out.NotMoved = []string{}
	}
	for i, a := range r.Accounts {
		out.Accounts[i] = apiReplacementAccount{DeviceUID: a.DeviceUID, Moved: optTime(a.MovedAt)}
	}
	return out
}

// apiApplianceReplace is POST /api/v1/appliances/{appliance}/replace: it
// begins replacing the appliance by the paired spare named in "with", or
// resumes the replacement between the two if the spare declined it.
func (s *API) apiApplianceReplace(w http.ResponseWriter, r *http.Request, a core.Actor) (int, any, error) {
	old, err := s.apiApplianceByPath(r, a)
	if err != nil {
		return 0, nil, err
	}
	var req apiApplianceReplaceRequest
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	if req.With == "" {
		return 0, nil, core.Fail(http.StatusBadRequest, "missing field \"with\": the id or name of the paired spare that replaces %q", old.Name)
	}
	spare, err := s.core.FindAppliance(r.Context(), req.With)
	if err != nil {
		var f *core.Failure
		if errors.As(err, &f) && f.Status == http.StatusNotFound {
			return 0, nil, core.Fail(http.StatusNotFound, "the spare %q is not a paired appliance: pair it first (Appliances → Pair appliance)", req.With)
		}
		return 0, nil, core.ApplianceFailure(err)
	}
	rep, err := s.core.ReplaceAppliance(r.Context(), a, old, spare)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, toAPIReplacement(rep), nil
}

type apiReplacementList struct {
	Replacements []apiReplacement `json:"replacements"`
}

// apiApplianceReplacements is GET /api/v1/appliances/{appliance}/replacements:
// the replacements the appliance is part of (as the old one or the
// spare), newest first, with their progress.
func (s *API) apiApplianceReplacements(w http.ResponseWriter, r *http.Request, a core.Actor) (int, any, error) {
	in, err := s.apiApplianceByPath(r, a)
	if err != nil {
		return 0, nil, err
	}
	list, err := s.core.Appliances().Replacements(r.Context(), in.ID)
	if err != nil {
		return 0, nil, err
	}
	out := apiReplacementList{Replacements: make([]apiReplacement, len(list))}
	for i, rep := range list {
		out.Replacements[i] = toAPIReplacement(rep)
	}
	return http.StatusOK, out, nil
}
