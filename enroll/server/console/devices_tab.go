package console

import (
	"net/http"

	"github.com/totpbox/totpbox/enroll/server/core"

	"github.com/totpbox/totpbox/enroll/store"
)

type devicesData struct {
	User    store.User
	Base    string
	List    string
	Portal  bool
	Tab     string
	Devices []store.Device
	// CanManage is false in the portal while self-service is off.
	CanManage bool
	// Placements says, by device ID, which appliance holds each device.
	Placements map[int64]core.Placement
}

// placements returns where each of devs stands with the appliances.
func (s *Console) placements(r *http.Request, devs []store.Device) map[int64]core.Placement {
	m := make(map[int64]core.Placement, len(devs))
	for _, d := range devs {
		m[d.ID] = s.core.Placement(r.Context(), d)
	}
	return m
}

// devicesTab is the MFA devices tab of a user's page in the console.
func (s *Console) devicesTab(w http.ResponseWriter, r *http.Request, sc *scope) {
	devs, err := s.store.DevicesByUser(r.Context(), sc.user.ID)
	if err != nil {
		s.errorPage(w, r, sc.a, err)
		return
	}
	d := devicesData{User: sc.user, Base: sc.base, List: sc.list(), Tab: "mfa-devices", Devices: devs, CanManage: core.AllowDevices(sc.a.actor(r), sc.user) == nil, Placements: s.placements(r, devs)}
	s.render(w, r, sc.a, http.StatusOK, "user_devices", page{Title: sc.user.Username + ": MFA devices", Section: "users", D: d})
}
