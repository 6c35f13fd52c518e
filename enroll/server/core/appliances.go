package core

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/totpbox/totpbox/enroll/server/appliance"
	"github.com/totpbox/totpbox/enroll/store"
)

// tell queues the change kind of MFA device d for the appliances holding
// it; kind is the value of the "hook" label of
// totpserver_appliance_hook_errors_total. The person's action has already
// happened, so a failure is logged and counted, never returned; the
// request's cancellation does not stop it.
func (s *Core) tell(ctx context.Context, kind store.ChangeKind, d store.Device) {
	ctx = context.WithoutCancel(ctx)
	err := s.appliances.DeviceChanged(ctx, appliance.DeviceChange{Kind: kind, DeviceUID: d.UID, Name: d.Name})
	if err != nil {
		s.metrics.hookErrors.WithLabelValues(string(kind)).Inc()
		s.log.Error("appliances not told about an MFA device change", "change", kind, "device", d.ID, "err", err)
	}
}

// ApplianceFailure turns the appliance API's errors into failures to show
// to the admin; other errors stay internal.
func ApplianceFailure(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, appliance.ErrBadCode):
		return Fail(http.StatusBadRequest, "no appliance is waiting with this pairing code: check the code on the appliance's screen (codes expire after 10 minutes)")
	case errors.Is(err, appliance.ErrNameTaken):
		return Fail(http.StatusConflict, "another appliance has this name; choose another")
	case errors.Is(err, appliance.ErrNoAppliance):
		return Fail(http.StatusNotFound, "no such appliance; it may have been unpaired meanwhile")
	case errors.Is(err, appliance.ErrUnpairing):
		return Fail(http.StatusConflict, "this appliance is being unpaired; pair it again to send it registrations")
	case errors.Is(err, appliance.ErrOnAnother):
		return Fail(http.StatusConflict, "this MFA device was already accepted on another appliance")
	case errors.Is(err, appliance.ErrAlreadyExpired):
		return Fail(http.StatusGone, "this registration has expired; start again")
	case errors.Is(err, appliance.ErrBadOffer):
		return Fail(http.StatusBadRequest, "%v", err)
	case errors.Is(err, appliance.ErrNoOffer):
		return Fail(http.StatusNotFound, "this MFA device was never sent to an appliance")
	}
	return err
}

// CleanApplianceName checks a friendly appliance name as the appliance API
// does, so that a bad one gets a clear message, and returns it trimmed.
func CleanApplianceName(name string) (string, error) {
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return "", Fail(http.StatusBadRequest, "type a name for the appliance, such as “Lobby kiosk 3”")
	case !utf8.ValidString(name):
		return "", Fail(http.StatusBadRequest, "the appliance name is not valid UTF-8")
	case utf8.RuneCountInString(name) > appliance.MaxNameLen:
		return "", Fail(http.StatusBadRequest, "the appliance name is over %d characters", appliance.MaxNameLen)
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return "", Fail(http.StatusBadRequest, "the appliance name contains a control character")
	}
	if r, ok := invisible(name); ok {
		return "", Fail(http.StatusBadRequest, "the appliance name holds an invisible format character U+%04X (a bidi control or zero-width character makes it read as another)", r)
	}
	return name, nil
}

// FindAppliance returns the appliance with id or, failing that, the one
// named so (regardless of case).
func (s *Core) FindAppliance(ctx context.Context, idOrName string) (appliance.Info, error) {
	idOrName = strings.TrimSpace(idOrName)
	if idOrName == "" {
		return appliance.Info{}, Fail(http.StatusBadRequest, "no appliance given")
	}
	in, err := s.appliances.Appliance(ctx, idOrName)
	if err == nil {
		return in, nil
	}
	if !errors.Is(err, appliance.ErrNoAppliance) {
		return in, err
	}
	all, err := s.appliances.Appliances(ctx)
	if err != nil {
		return appliance.Info{}, err
	}
	for _, a := range all {
		if strings.EqualFold(a.Name, idOrName) {
			return a, nil
		}
	}
	return appliance.Info{}, Fail(http.StatusNotFound, "no paired appliance with id or name %q", idOrName)
}

// SendOffer sends the pending registration d of u to the appliance app.
// The offer lapses with the registration.
func (s *Core) SendOffer(ctx context.Context, a Actor, u store.User, d store.Device, app appliance.Info) error {
	if err := s.allowSend(a, u, app); err != nil {
		return err
	}
	if app.Unpairing {
		return ApplianceFailure(appliance.ErrUnpairing)
	}
	k, err := s.PendingKey(ctx, u, d)
	if err != nil {
		return err
	}
	from, o, err := s.registrationState(ctx, d)
	if err != nil {
		return err
	}
	if from == RegAccepted && o.ApplianceID == app.ID {
		return nil // already accepted there: sending again changes nothing
	}
	if _, err := Next(from, EvSend); err != nil {
		return err
	}
	if err := s.appliances.SendOffer(ctx, app.ID, d.UID, u.Username, d.Name, k, d.ExpiresAt); err != nil {
		return ApplianceFailure(err)
	}
	s.metrics.offersSent.Inc()
	s.Audit(ctx, a, "offer.send", deviceTarget(u, d), fmt.Sprintf("sent %q to appliance %q (%s)", d.Name, app.Name, app.ID))
	return nil
}

// offerState returns where the latest offer of d stands, or nil when it
// was never sent to an appliance.
func (s *Core) OfferState(ctx context.Context, d store.Device) (*appliance.OfferStatus, error) {
	st, err := s.appliances.OfferState(ctx, d.UID)
	if errors.Is(err, appliance.ErrNoOffer) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &st, nil
}

// PairAppliance pairs the appliance showing code (as typed) under name,
// and records it in the audit log: the one pairing operation of the
// console and the admin API.
func (s *Core) PairAppliance(ctx context.Context, a Actor, code, name string) (appliance.Info, error) {
	if err := Allow(a, OpAppliances); err != nil {
		return appliance.Info{}, err
	}
	name, err := CleanApplianceName(name)
	if err != nil {
		return appliance.Info{}, err
	}
	var in appliance.Info
	err = s.Atomic(ctx, func(ctx context.Context) error {
		var err error
		if in, err = s.appliances.Pair(ctx, code, name); err != nil {
			return err
		}
		s.Audit(ctx, a, "appliance.pair", "appliance:"+in.ID, fmt.Sprintf("paired %q (version %s)", in.Name, in.Version))
		return nil
	})
	if err != nil {
		return appliance.Info{}, ApplianceFailure(err)
	}
	return in, nil
}

// RenameAppliance gives appliance app the friendly name name and records
// it in the audit log; the same name again changes nothing. It returns the
// name as stored (trimmed).
func (s *Core) RenameAppliance(ctx context.Context, a Actor, app appliance.Info, name string) (string, error) {
	if err := Allow(a, OpAppliances); err != nil {
		return "", err
	}
	name, err := CleanApplianceName(name)
	if err != nil {
		return "", err
	}
	if name == app.Name {
		return name, nil
	}
	if err := s.appliances.RenameAppliance(ctx, app.ID, name); err != nil {
		return "", ApplianceFailure(err)
	}
	s.Audit(ctx, a, "appliance.rename", "appliance:"+app.ID, fmt.Sprintf("%q to %q", app.Name, name))
	return name, nil
}

// UnpairAppliance unpairs appliance app (see appliance.API.Unpair) and
// records it in the audit log; unpairing one already being unpaired is
// harmless and not recorded again.
func (s *Core) UnpairAppliance(ctx context.Context, a Actor, app appliance.Info) error {
	if err := Allow(a, OpAppliances); err != nil {
		return err
	}
	err := s.Atomic(ctx, func(ctx context.Context) error {
		if err := s.appliances.Unpair(ctx, app.ID); err != nil {
			return err
		}
		if !app.Unpairing {
			s.Audit(ctx, a, "appliance.unpair", "appliance:"+app.ID, fmt.Sprintf("unpaired %q", app.Name))
		}
		return nil
	})
	if err != nil {
		return ApplianceFailure(err)
	}
	return nil
}

// MaxSiteLen bounds a site name.
const MaxSiteLen = 64

// CleanSite checks a site name as typed: empty (no site), or 1 to
// MaxSiteLen letters, digits and . _ - (such as store-12); it returns it
// trimmed, or a 400 Failure naming what is wrong.
func CleanSite(site string) (string, error) {
	site = strings.TrimSpace(site)
	if len(site) > MaxSiteLen {
		return "", Fail(http.StatusBadRequest, "the site name is over %d characters", MaxSiteLen)
	}
	for _, r := range site {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._-", r)) {
			return "", Fail(http.StatusBadRequest, "a site name may hold only letters, digits and . _ -, not %q", r)
		}
	}
	return site, nil
}

// SetApplianceSite puts appliance app in site (empty for none) and
// records it in the audit log; the same site again changes nothing. It
// returns the site as stored.
func (s *Core) SetApplianceSite(ctx context.Context, a Actor, app appliance.Info, site string) (string, error) {
	if err := Allow(a, OpAppliances); err != nil {
		return "", err
	}
	site, err := CleanSite(site)
	if err != nil {
		return "", err
	}
	if site == app.Site {
		return site, nil
	}
	if err := s.appliances.SetSite(ctx, app.ID, site); err != nil {
		return "", ApplianceFailure(err)
	}
	s.Audit(ctx, a, "appliance.site", "appliance:"+app.ID, fmt.Sprintf("%q from site %q to %q", app.Name, app.Site, site))
	return site, nil
}

// VisibleAppliances returns the appliances of all that a may see: none
// without OpReadAppliances, only their sites' for a site-limited actor.
func VisibleAppliances(a Actor, all []appliance.Info) []appliance.Info {
	if Allow(a, OpReadAppliances) != nil {
		return nil
	}
	var out []appliance.Info
	for _, app := range all {
		if AllowSite(a, app.Site) == nil {
			out = append(out, app)
		}
	}
	return out
}

// ApplianceFor returns the appliance with id or name idOrName when a may
// see it: a 403 Failure without OpReadAppliances or when it is of a site
// a may not use.
func (s *Core) ApplianceFor(ctx context.Context, a Actor, idOrName string) (appliance.Info, error) {
	if err := Allow(a, OpReadAppliances); err != nil {
		return appliance.Info{}, err
	}
	app, err := s.FindAppliance(ctx, idOrName)
	if err != nil {
		return app, err
	}
	if err := AllowSite(a, app.Site); err != nil {
		return appliance.Info{}, err
	}
	return app, nil
}
