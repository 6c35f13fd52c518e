package api

import (
	"fmt"
	"net/http"

	"github.com/totpbox/totpbox/enroll/server/core"
)

// apiHardwareTokenList is GET /api/v1/hardware-tokens: the imported
// hardware tokens by serial, unassigned or assigned, never their secrets.
func (s *API) apiHardwareTokenList(w http.ResponseWriter, r *http.Request, a core.Actor) (int, any, error) {
	list, err := s.core.HardwareTokens(r.Context())
	if err != nil {
		return 0, nil, err
	}
	if list == nil {
		list = []core.HardwareToken{}
	}
	return http.StatusOK, map[string]any{"hardware_tokens": list}, nil
}

type apiAssignRequest struct {
	Username string `json:"username"`
	// Code is a code the token shows now: proof that whoever assigns it
	// holds it.
	Code string `json:"code"`
}

// apiHardwareTokenAssign is POST /api/v1/hardware-tokens/{serial}/assign:
// the token becomes an active MFA device of the user, kind hardware,
// named by its serial, confirmed by a code from the token. 201 with the
// new device.
func (s *API) apiHardwareTokenAssign(w http.ResponseWriter, r *http.Request, a core.Actor) (int, any, error) {
	var req apiAssignRequest
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	if req.Username == "" {
		return 0, nil, core.Fail(400, "username is required: the user the token is assigned to")
	}
	d, err := s.core.AssignHardwareToken(r.Context(), a, r.PathValue("serial"), req.Username, req.Code)
	if err != nil {
		return 0, nil, err
	}
	w.Header().Set("Location", fmt.Sprintf("/api/v1/users/%s/mfa-devices/%d", req.Username, d.ID))
	return http.StatusCreated, toAPIDevice(d, s.clock.Now()), nil
}
