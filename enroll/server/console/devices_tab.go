package console

import (
	"net/http"

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
}

// devicesTab is the MFA devices tab of a user's page in the console.
func (s *Console) devicesTab(w http.ResponseWriter, r *http.Request, sc *scope) {
	devs, err := s.store.DevicesByUser(r.Context(), sc.user.ID)
	if err != nil {
		s.errorPage(w, r, sc.a, err)
		return
	}
	d := devicesData{User: sc.user, Base: sc.base, List: sc.list(), Tab: "mfa-devices", Devices: devs, CanManage: true}
	s.render(w, r, sc.a, http.StatusOK, "user_devices", page{Title: sc.user.Username + ": MFA devices", Section: "users", D: d})
}
