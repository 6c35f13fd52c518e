package console

import (
	"github.com/totpbox/totpbox/enroll/server/core"

	"net/http"
	"strconv"
	"strings"
	"time"
)

type settingsData struct {
	S core.Settings
	// LockoutClearMinutes is LockoutClear for the form.
	LockoutClearMinutes int
}

func (s *Console) settingsShow(w http.ResponseWriter, r *http.Request, a *auth) {
	st, err := s.core.Settings(r.Context())
	if err != nil {
		s.errorPage(w, r, a, err)
		return
	}
	s.render(w, r, a, http.StatusOK, "settings", page{Title: "Settings", Section: "settings", D: settingsData{S: st, LockoutClearMinutes: int(st.LockoutClear / time.Minute)}})
}

func (s *Console) settingsSave(w http.ResponseWriter, r *http.Request, a *auth) {
	old, err := s.core.Settings(r.Context())
	if err != nil {
		s.errorPage(w, r, a, err)
		return
	}
	st := old
	var bad []string
	num := func(field, label string, dst *int) {
		v := strings.TrimSpace(r.PostFormValue(field))
		n, err := strconv.Atoi(v)
		if err != nil {
			bad = append(bad, label+" must be a whole number")
			return
		}
		*dst = n
	}
	st.Issuer = strings.TrimSpace(r.PostFormValue("issuer"))
	st.SelfService = r.PostFormValue("self_service") == "on"
	st.RequireAdminMFA = r.PostFormValue("require_admin_mfa") == "on"
	num("registration_codes", "codes required at registration", &st.RegistrationCodes)
	num("verify_window", "codes accepted either side of the current one", &st.VerifyWindow)
	num("lockout_threshold", "wrong codes before a device locks", &st.LockoutThreshold)
	num("max_devices", "MFA devices per user", &st.MaxDevices)
	if r.PostForm.Has("lockout_max") {
		num("lockout_max", "locks before a device stays locked until unlocked", &st.LockoutMax)
	}
	var minutes int
	num("lockout_clear_minutes", "minutes the first lock lasts", &minutes)
	st.LockoutClear = time.Duration(minutes) * time.Minute
	if len(bad) == 0 {
		err = s.core.ChangeSettings(r.Context(), a.actor(r), st, describeSettingsChange(old, st))
	} else {
		err = core.Fail(400, "%s", strings.Join(bad, "; "))
	}
	if err != nil {
		status, msg := core.Explain(err)
		if status >= http.StatusInternalServerError {
			s.errorPage(w, r, a, err)
			return
		}
		var field string
		if len(bad) <= 1 {
			field = errorField(msg, settingFields...)
		}
		s.render(w, r, a, status, "settings", page{Title: "Settings", Section: "settings", Error: msg, Field: field, D: settingsData{S: st, LockoutClearMinutes: minutes}})
		return
	}
	s.setFlash(w, r, "Settings saved.")
	http.Redirect(w, r, "/settings", http.StatusSeeOther)
}

// describeSettingsChange lists the settings that changed, for the audit log.
func describeSettingsChange(old, cur core.Settings) string {
	o, c := old.Map(), cur.Map()
	var parts []string
	for _, k := range []string{"issuer", "self_service", "registration_codes", "verify_window", "lockout_threshold", "lockout_clear", "lockout_max", "max_devices", "require_admin_mfa"} {
		if o[k] != c[k] {
			parts = append(parts, k+"="+c[k])
		}
	}
	if len(parts) == 0 {
		return "no change"
	}
	return strings.Join(parts, " ")
}

// settingFields are the settings form's fields and the words their
// messages use (the page's labels).
var settingFields = [][2]string{
	{"issuer", "issuer"},
	{"registration_codes", "codes required at registration"},
	{"verify_window", "codes accepted either side"},
	{"lockout_threshold", "wrong codes before a device locks"},
	{"lockout_clear_minutes", "first lock"},
	{"lockout_max", "locks before a device stays locked"},
	{"max_devices", "mfa devices per user"},
}
