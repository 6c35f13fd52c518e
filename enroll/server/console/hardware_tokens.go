package console

import (
	"fmt"
	"net/http"

	"github.com/totpbox/totpbox/enroll/server/core"
)

// hardwareTokensData is the Hardware tokens page: the imported tokens and
// the "Assign hardware token" form, with what was typed when it failed.
type hardwareTokensData struct {
	Tokens     []core.HardwareToken
	Unassigned []core.HardwareToken
	Serial     string
	Username   string
}

func (s *Console) hardwareTokensPage(w http.ResponseWriter, r *http.Request, a *auth, status int, d hardwareTokensData, msg string) {
	list, err := s.core.HardwareTokens(r.Context())
	if err != nil {
		s.errorPage(w, r, a, err)
		return
	}
	d.Tokens = list
	for _, t := range list {
		if !t.Assigned {
			d.Unassigned = append(d.Unassigned, t)
			if d.Serial == t.Serial && d.Username == "" && r.Method == http.MethodGet {
				d.Username = t.Username // the file's pre-assignment
			}
		}
	}
	s.render(w, r, a, status, "hardware_tokens", page{Title: "Hardware tokens", Section: "hardware-tokens", Wide: true, Error: msg,
		Field: errorField(msg, [2]string{"username", "user"}, [2]string{"code", "code"}, [2]string{"serial", "token"}), D: d})
}

// hardwareTokensShow lists the imported hardware tokens; ?serial= picks
// the token the assign form is for.
func (s *Console) hardwareTokensShow(w http.ResponseWriter, r *http.Request, a *auth) {
	s.hardwareTokensPage(w, r, a, http.StatusOK, hardwareTokensData{Serial: r.URL.Query().Get("serial")}, "")
}

// hardwareTokenAssign assigns the chosen token to the typed user,
// confirmed by the code typed from the token.
func (s *Console) hardwareTokenAssign(w http.ResponseWriter, r *http.Request, a *auth) {
	d := hardwareTokensData{Serial: r.PostFormValue("serial"), Username: r.PostFormValue("username")}
	dev, err := s.core.AssignHardwareToken(r.Context(), a.actor(r), d.Serial, d.Username, r.PostFormValue("code"))
	if err == nil {
		s.setFlash(w, r, fmt.Sprintf("Hardware token %s assigned to %s: it is an MFA device of theirs now.", dev.Name, d.Username))
		http.Redirect(w, r, "/hardware-tokens", http.StatusSeeOther)
		return
	}
	status, msg := core.Explain(err)
	if status >= http.StatusInternalServerError {
		s.errorPage(w, r, a, err)
		return
	}
	s.hardwareTokensPage(w, r, a, status, d, msg)
}
