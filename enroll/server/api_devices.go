package server

import (
	"context"
	"fmt"
	"net/http"

	"github.com/totpbox/totpbox/enroll/store"
)

type apiDeviceCreateRequest struct {
	Name string `json:"name"`
	Kind string `json:"kind"`
}

// apiDeviceCreated is the one response that carries a device's secret:
// the registration is pending until its code is confirmed.
type apiDeviceCreated struct {
	apiDevice
	Secret     string `json:"secret"`
	OTPAuthURI string `json:"otpauth_uri"`
}

// apiDeviceCreate is POST /api/v1/users/{username}/mfa-devices.
func (s *Server) apiDeviceCreate(w http.ResponseWriter, r *http.Request, a actor) (int, any, error) {
	u, err := s.apiUserByPath(r)
	if err != nil {
		return 0, nil, err
	}
	var req apiDeviceCreateRequest
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	d, k, err := s.startRegistration(r.Context(), a, u, req.Name, store.DeviceKind(req.Kind))
	if err != nil {
		return 0, nil, err
	}
	w.Header().Set("Location", fmt.Sprintf("/api/v1/users/%s/mfa-devices/%d", u.Username, d.ID))
	return http.StatusCreated, apiDeviceCreated{apiDevice: toAPIDevice(d, s.clock.Now()), Secret: k.SecretBase32(), OTPAuthURI: k.URI()}, nil
}

type apiDeviceList struct {
	MFADevices []apiDevice `json:"mfa_devices"`
}

// apiDeviceList is GET /api/v1/users/{username}/mfa-devices.
func (s *Server) apiDeviceList(w http.ResponseWriter, r *http.Request, a actor) (int, any, error) {
	u, err := s.apiUserByPath(r)
	if err != nil {
		return 0, nil, err
	}
	devs, err := s.store.DevicesByUser(r.Context(), u.ID)
	if err != nil {
		return 0, nil, err
	}
	now := s.clock.Now()
	out := apiDeviceList{MFADevices: make([]apiDevice, 0, len(devs))}
	for _, d := range devs {
		out.MFADevices = append(out.MFADevices, toAPIDevice(d, now))
	}
	return http.StatusOK, out, nil
}

// apiDeviceDelete is DELETE /api/v1/users/{username}/mfa-devices/{id}.
func (s *Server) apiDeviceDelete(w http.ResponseWriter, r *http.Request, a actor) (int, any, error) {
	u, err := s.apiUserByPath(r)
	if err != nil {
		return 0, nil, err
	}
	id, err := pathID(r)
	if err != nil {
		return 0, nil, err
	}
	if err := s.deleteDevice(r.Context(), a, u, id); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, nil
}

type apiCodesRequest struct {
	Codes []string `json:"codes"`
}

// apiDeviceConfirm is POST .../mfa-devices/{id}/confirm.
func (s *Server) apiDeviceConfirm(w http.ResponseWriter, r *http.Request, a actor) (int, any, error) {
	return s.apiCodes(r, a, s.confirmRegistration)
}

// apiDeviceResync is POST .../mfa-devices/{id}/resync.
func (s *Server) apiDeviceResync(w http.ResponseWriter, r *http.Request, a actor) (int, any, error) {
	return s.apiCodes(r, a, s.resyncDevice)
}

func (s *Server) apiCodes(r *http.Request, a actor, op func(ctx context.Context, a actor, u store.User, id int64, codes []string) (store.Device, error)) (int, any, error) {
	u, err := s.apiUserByPath(r)
	if err != nil {
		return 0, nil, err
	}
	id, err := pathID(r)
	if err != nil {
		return 0, nil, err
	}
	var req apiCodesRequest
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	if req.Codes == nil {
		return 0, nil, fail(400, "missing field \"codes\"")
	}
	d, err := op(r.Context(), a, u, id, req.Codes)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, toAPIDevice(d, s.clock.Now()), nil
}
