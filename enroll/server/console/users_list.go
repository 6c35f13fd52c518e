package console

import (
	"net/http"
	"strings"

	"github.com/totpbox/totpbox/enroll/store"
)

type usersData struct {
	Query string
	Users []store.User
	More  bool
}

const usersPageSize = 200

// usersList is the Users page: a search box and the matching users.
func (s *Console) usersList(w http.ResponseWriter, r *http.Request, a *auth) {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	if len(q) > 128 {
		q = q[:128]
	}
	users, err := s.store.ListUsers(r.Context(), q, usersPageSize+1)
	if err != nil {
		s.errorPage(w, r, a, err)
		return
	}
	d := usersData{Query: q, Users: users}
	if len(users) > usersPageSize {
		d.Users, d.More = users[:usersPageSize], true
	}
	s.render(w, r, a, http.StatusOK, "users", page{Title: "Users", Section: "users", D: d})
}
