package console

import (
	"github.com/totpbox/totpbox/enroll/server/core"

	"net/http"
	"net/url"
)

type userNewData struct {
	Username, DisplayName, Email string
	Admin                        bool
}

func (s *Console) userNew(w http.ResponseWriter, r *http.Request, a *auth) {
	s.render(w, r, a, http.StatusOK, "user_new", page{Title: "Create user", Section: "users", D: userNewData{}})
}

func (s *Console) userCreate(w http.ResponseWriter, r *http.Request, a *auth) {
	in := core.NewUser{
		Username:    r.PostFormValue("username"),
		DisplayName: r.PostFormValue("display_name"),
		Email:       r.PostFormValue("email"),
		Password:    r.PostFormValue("password"),
		Admin:       r.PostFormValue("admin") == "on",
	}
	u, err := s.core.CreateUser(r.Context(), a.actor(r), in)
	if err != nil {
		status, msg := core.Explain(err)
		if status >= http.StatusInternalServerError {
			s.errorPage(w, r, a, err)
			return
		}
		d := userNewData{Username: in.Username, DisplayName: in.DisplayName, Email: in.Email, Admin: in.Admin}
		s.render(w, r, a, status, "user_new", page{Title: "Create user", Section: "users", Error: msg, Field: errorField(msg, [2]string{"username", "username"}, [2]string{"display_name", "display name"}, [2]string{"email", "email"}, [2]string{"password", "password"}), D: d})
		return
	}
	s.setFlash(w, r, "User "+u.Username+" created.")
	http.Redirect(w, r, "/users/"+url.PathEscape(u.Username), http.StatusSeeOther)
}
