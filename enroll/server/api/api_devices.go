package api

import (
	"github.com/totpbox/totpbox/enroll/server/core"

	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/totpbox/totpbox/enroll/server/appliance"
	"github.com/totpbox/totpbox/enroll/store"
)

type apiDeviceCreateRequest struct {
	Name string `json:"name"`
	Kind string `json:"kind"`
	// Appliance, when set, is the id or name of a paired appliance to
	// send the registration to; Kind then defaults to "appliance".
	Appliance string `json:"appliance"`
}

// apiDeviceCreated is the one response that carries a device's secret:
// the registration is pending until its code is confirmed.
type apiDeviceCreated struct {
	apiDevice
	Secret     string `json:"secret"`
	OTPAuthURI string `json:"otpauth_uri"`
}

// apiDeviceCreate is POST /api/v1/users/{username}/mfa-devices.
func (s *API) apiDeviceCreate(w http.ResponseWriter, r *http.Request, a core.Actor) (int, any, error) {
	u, err := s.apiUserByPath(r)
	if err != nil {
		return 0, nil, err
	}
	var req apiDeviceCreateRequest
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	ctx := r.Context()
	var app appliance.Info
	if req.Appliance != "" {
		// Find the appliance first, so a wrong one leaves nothing behind.
		if app, err = s.core.ApplianceFor(ctx, a, req.Appliance); err != nil {
			return 0, nil, core.ApplianceFailure(err)
		}
		if app.Unpairing {
			return 0, nil, core.ApplianceFailure(appliance.ErrUnpairing)
		}
		if req.Kind == "" {
			req.Kind = string(store.KindAppliance)
		}
	}
	d, k, err := s.core.StartRegistration(ctx, a, u, req.Name, store.DeviceKind(req.Kind))
	if err != nil {
		return 0, nil, err
	}
	out := apiDeviceCreated{apiDevice: toAPIDevice(d, s.clock.Now()), Secret: k.SecretBase32(), OTPAuthURI: k.URI()}
	if req.Appliance != "" {
		if err := s.core.SendOffer(ctx, a, u, d, app); err != nil {
			// Undo the registration: the caller asked for both or neither.
			if derr := s.core.DeleteDevice(context.WithoutCancel(ctx), a, u, d.ID); derr != nil {
				s.log.Error("remove a registration whose offer failed", "device", d.ID, "err", derr)
			}
			return 0, nil, err
		}
		if out.Offer, err = s.apiOffer(ctx, d); err != nil {
			return 0, nil, err
		}
	}
	w.Header().Set("Location", fmt.Sprintf("/api/v1/users/%s/mfa-devices/%d", u.Username, d.ID))
	return http.StatusCreated, out, nil
}

// apiOfferState is where the offer of a registration to an appliance
// stands.
type apiOfferState struct {
	ApplianceID   string     `json:"appliance_id"`
	ApplianceName string     `json:"appliance_name,omitempty"`
	State         string     `json:"state"`
	Sent          time.Time  `json:"sent"`
	Answered      *time.Time `json:"answered,omitempty"`
	// Sequence is the button sequence that accepts a pending offer on the
	// appliance, after OK on it ("next", "back", "ok").
	Sequence []string `json:"sequence,omitempty"`
}

// apiOffer returns the offer state of d, or nil when it was never sent to
// an appliance.
func (s *API) apiOffer(ctx context.Context, d store.Device) (*apiOfferState, error) {
	o, err := s.core.OfferState(ctx, d)
	if err != nil || o == nil {
		return nil, err
	}
	return toAPIOffer(o), nil
}

func toAPIOffer(o *appliance.OfferStatus) *apiOfferState {
	if o == nil {
		return nil
	}
	return &apiOfferState{ApplianceID: o.ApplianceID, ApplianceName: o.ApplianceName, State: o.State,
		Sent: o.Sent.UTC(), Answered: optTime(o.Answered), Sequence: o.Sequence}
}

// placed returns d as the API shows it, with its registration state, the
// appliance holding it and its latest offer.
func (s *API) placed(ctx context.Context, d store.Device) (apiDevice, error) {
	ad := toAPIDevice(d, s.clock.Now())
	p := s.core.Placement(ctx, d)
	ad.State, ad.Appliance, ad.Offer = string(p.State), p.Appliance, toAPIOffer(p.Offer)
	return ad, nil
}

type apiSendRequest struct {
	Appliance string `json:"appliance"`
}

// apiDeviceSend is POST .../mfa-devices/{id}/send: the pending
// registration is offered to another (or the same) appliance; an open
// offer elsewhere is withdrawn.
func (s *API) apiDeviceSend(w http.ResponseWriter, r *http.Request, a core.Actor) (int, any, error) {
	u, id, err := s.apiDeviceByPath(r)
	if err != nil {
		return 0, nil, err
	}
	var req apiSendRequest
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	ctx := r.Context()
	d, err := s.core.UserDevice(ctx, u, id)
	if err != nil {
		return 0, nil, err
	}
	app, err := s.core.ApplianceFor(ctx, a, req.Appliance)
	if err != nil {
		return 0, nil, core.ApplianceFailure(err)
	}
	if err := s.core.SendOffer(ctx, a, u, d, app); err != nil {
		return 0, nil, err
	}
	out, err := s.placed(ctx, d)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, out, nil
}

// apiDeviceByPath loads the user named in the path, or 404, and reads
// the MFA device id beside it.
func (s *API) apiDeviceByPath(r *http.Request) (store.User, int64, error) {
	u, err := s.apiUserByPath(r)
	if err != nil {
		return store.User{}, 0, err
	}
	id, err := core.PathID(r)
	return u, id, err
}

type apiDeviceList struct {
	MFADevices []apiDevice `json:"mfa_devices"`
}

// apiDeviceList is GET /api/v1/users/{username}/mfa-devices.
func (s *API) apiDeviceList(w http.ResponseWriter, r *http.Request, a core.Actor) (int, any, error) {
	u, err := s.apiUserByPath(r)
	if err != nil {
		return 0, nil, err
	}
	devs, err := s.store.DevicesByUser(r.Context(), u.ID)
	if err != nil {
		return 0, nil, err
	}
	out := apiDeviceList{MFADevices: make([]apiDevice, 0, len(devs))}
	for _, d := range devs {
		ad, err := s.placed(r.Context(), d)
		if err != nil {
			return 0, nil, err
		}
		out.MFADevices = append(out.MFADevices, ad)
	}
	return http.StatusOK, out, nil
}

// apiDeviceDelete is DELETE /api/v1/users/{username}/mfa-devices/{id}.
func (s *API) apiDeviceDelete(w http.ResponseWriter, r *http.Request, a core.Actor) (int, any, error) {
	u, id, err := s.apiDeviceByPath(r)
	if err != nil {
		return 0, nil, err
	}
	if err := s.core.DeleteDevice(r.Context(), a, u, id); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, nil
}

type apiCodesRequest struct {
	Codes []string `json:"codes"`
}

// apiDeviceConfirm is POST .../mfa-devices/{id}/confirm.
func (s *API) apiDeviceConfirm(w http.ResponseWriter, r *http.Request, a core.Actor) (int, any, error) {
	return s.apiCodes(r, a, s.core.ConfirmRegistration)
}

// apiDeviceResync is POST .../mfa-devices/{id}/resync.
func (s *API) apiDeviceResync(w http.ResponseWriter, r *http.Request, a core.Actor) (int, any, error) {
	return s.apiCodes(r, a, s.core.ResyncDevice)
}

func (s *API) apiCodes(r *http.Request, a core.Actor, op func(ctx context.Context, a core.Actor, u store.User, id int64, codes []string) (store.Device, error)) (int, any, error) {
	u, id, err := s.apiDeviceByPath(r)
	if err != nil {
		return 0, nil, err
	}
	var req apiCodesRequest
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	if req.Codes == nil {
		return 0, nil, core.Fail(400, "missing field \"codes\"")
	}
	d, err := op(r.Context(), a, u, id, req.Codes)
	if err != nil {
		return 0, nil, err
	}
	out, err := s.placed(r.Context(), d)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, out, nil
}
