package server

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

// Hooks that tell appliances about MFA device changes, the values of the
// "hook" label of totpserver_appliance_hook_errors_total.
const (
	hookActivate = "activate"
	hookRename   = "rename"
	hookDelete   = "delete"
	hookExpire   = "expire"
)

// tellAppliances queues the change hook of device d for the appliances
// holding it. The person's action has already happened, so a failure is
// logged and counted, never returned; the request's cancellation does not
// stop it.
func (s *Server) tellAppliances(ctx context.Context, hook string, d store.Device) {
	ctx = context.WithoutCancel(ctx)
	var err error
	switch hook {
	case hookActivate:
		err = s.appliances.DeviceActivated(ctx, d.UID)
	case hookRename:
		err = s.appliances.DeviceRenamed(ctx, d.UID, d.Name)
	case hookDelete:
		err = s.appliances.DeviceDeleted(ctx, d.UID)
	case hookExpire:
		err = s.appliances.DeviceExpired(ctx, d.UID)
	default:
		err = fmt.Errorf("unknown hook %q", hook)
	}
	if err != nil {
		s.metrics.hookErrors.WithLabelValues(hook).Inc()
		s.log.Error("appliances not told about an MFA device change", "change", hook, "device", d.ID, "err", err)
	}
}

// applianceFailure turns the appliance API's errors into failures to show
// to the admin; other errors stay internal.
func applianceFailure(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, appliance.ErrBadCode):
		return fail(http.StatusBadRequest, "no appliance is waiting with this pairing code: check the code on the appliance's screen (codes expire after 10 minutes)")
	case errors.Is(err, appliance.ErrNameTaken):
		return fail(http.StatusConflict, "another appliance has this name; choose another")
	case errors.Is(err, appliance.ErrNoAppliance):
		return fail(http.StatusNotFound, "no such appliance; it may have been unpaired meanwhile")
	case errors.Is(err, appliance.ErrUnpairing):
		return fail(http.StatusConflict, "this appliance is being unpaired; pair it again to send it registrations")
	case errors.Is(err, appliance.ErrOnAnother):
		return fail(http.StatusConflict, "this MFA device was already accepted on another appliance")
	case errors.Is(err, appliance.ErrAlreadyExpired):
		return fail(http.StatusGone, "this registration has expired; start again")
	case errors.Is(err, appliance.ErrBadOffer):
		return fail(http.StatusBadRequest, "%v", err)
	case errors.Is(err, appliance.ErrNoOffer):
		return fail(http.StatusNotFound, "this MFA device was never sent to an appliance")
	}
	return err
}

// cleanApplianceName checks a friendly appliance name as the appliance API
// does, so that a bad one gets a clear message, and returns it trimmed.
func cleanApplianceName(name string) (string, error) {
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return "", fail(http.StatusBadRequest, "type a name for the appliance, such as “Lobby kiosk 3”")
	case !utf8.ValidString(name):
		return "", fail(http.StatusBadRequest, "the appliance name is not valid UTF-8")
	case utf8.RuneCountInString(name) > appliance.MaxNameLen:
		return "", fail(http.StatusBadRequest, "the appliance name is over %d characters", appliance.MaxNameLen)
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return "", fail(http.StatusBadRequest, "the appliance name contains a control character")
	}
	return name, nil
}

// findAppliance returns the appliance with id or, failing that, the one
// named so (regardless of case).
func (s *Server) findAppliance(ctx context.Context, idOrName string) (appliance.Info, error) {
	idOrName = strings.TrimSpace(idOrName)
	if idOrName == "" {
		return appliance.Info{}, fail(http.StatusBadRequest, "no appliance given")
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
	return appliance.Info{}, fail(http.StatusNotFound, "no paired appliance with id or name %q", idOrName)
}

// sendOffer sends the pending registration d of u to the appliance app.
// The offer lapses with the registration.
func (s *Server) sendOffer(ctx context.Context, a actor, u store.User, d store.Device, app appliance.Info) error {
	if app.Unpairing {
		return applianceFailure(appliance.ErrUnpairing)
	}
	k, err := s.pendingKey(ctx, u, d)
	if err != nil {
		return err
	}
	if err := s.appliances.SendOffer(ctx, app.ID, d.UID, u.Username, d.Name, k, d.ExpiresAt); err != nil {
		return applianceFailure(err)
	}
	s.sent.add(d.UID, app.ID, s.clock.Now())
	s.metrics.offersSent.Inc()
	s.audit(ctx, a, "offer.send", deviceTarget(u, d), fmt.Sprintf("sent %q to appliance %q (%s)", d.Name, app.Name, app.ID))
	return nil
}

// offerState returns where the latest offer of d stands, or nil when it
// was never sent to an appliance.
func (s *Server) offerState(ctx context.Context, d store.Device) (*appliance.OfferStatus, error) {
	st, err := s.appliances.OfferState(ctx, d.UID)
	if errors.Is(err, appliance.ErrNoOffer) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &st, nil
}
