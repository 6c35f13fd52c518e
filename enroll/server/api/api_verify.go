package api

import (
	"github.com/totpbox/totpbox/enroll/server/core"

	"net"
	"net/http"
)

type apiVerifyRequest struct {
	Username string `json:"username"`
	Code     string `json:"code"`
	// IP is the address of the person signing in, for the per-address
	// rate limit; the caller's address when empty.
	IP string `json:"ip"`
}

type apiVerifyResponse struct {
	OK       bool   `json:"ok"`
	DeviceID int64  `json:"device_id,omitempty"`
	Reason   string `json:"reason,omitempty"`
}

// apiVerify is POST /api/v1/verify: what an application calls at sign-in.
func (s *API) apiVerify(w http.ResponseWriter, r *http.Request, a core.Actor) (int, any, error) {
	var req apiVerifyRequest
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	if req.Username == "" {
		return 0, nil, core.Fail(400, "missing field \"username\"")
	}
	if req.Code == "" {
		return 0, nil, core.Fail(400, "missing field \"code\"")
	}
	name, err := core.CleanUsername(req.Username)
	if err != nil {
		return 0, nil, core.Fail(400, "%v", err)
	}
	code, err := core.CleanCode(req.Code)
	if err != nil {
		return 0, nil, core.Fail(400, "%v", err)
	}
	ip := a.IP
	if req.IP != "" {
		parsed := net.ParseIP(req.IP)
		if parsed == nil {
			return 0, nil, core.Fail(400, "ip %q is not an IP address", req.IP)
		}
		ip = parsed.String()
	}
	res, err := s.core.Verify(r.Context(), a, name, code, ip)
	if err != nil {
		return 0, nil, err
	}
	switch {
	case res.OK:
		return http.StatusOK, apiVerifyResponse{OK: true, DeviceID: res.DeviceID}, nil
	case res.RetryAfter > 0:
		retryAfter(w, res.RetryAfter)
		return http.StatusTooManyRequests, apiVerifyResponse{Reason: res.Reason}, nil
	}
	return http.StatusUnauthorized, apiVerifyResponse{Reason: res.Reason}, nil
}
