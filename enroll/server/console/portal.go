package console

import (
	"net/http"
)

// portalShow is the user portal: the signed-in user's own MFA devices,
// with registration and management when the setting allows (always for
// an admin).
func (s *Console) portalShow(w http.ResponseWriter, r *http.Request, a *auth) {
	st, err := s.core.Settings(r.Context())
	if err != nil {
		s.errorPage(w, r, a, err)
		return
	}
	devs, err := s.store.DevicesByUser(r.Context(), a.user.ID)
	if err != nil {
		s.errorPage(w, r, a, err)
		return
	}
	d := devicesData{User: a.user, Base: "/portal", List: "/portal", Portal: true, Devices: devs, CanManage: st.SelfService || a.user.Admin, Placements: s.placements(r, devs)}
	s.render(w, r, a, http.StatusOK, "portal", page{Title: "Your MFA devices", Section: "portal", D: d})
}
