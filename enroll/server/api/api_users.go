package api

import (
	"github.com/totpbox/totpbox/enroll/server/core"

	"errors"
	"net/http"

	"github.com/totpbox/totpbox/enroll/store"
)

type apiUserCreateRequest struct {
	Username    string `json:"username"`
	DisplayName string `json:"display_name"`
	Email       string `json:"email"`
}

// apiUserCreate is POST /api/v1/users.
func (s *API) apiUserCreate(w http.ResponseWriter, r *http.Request, a core.Actor) (int, any, error) {
	var req apiUserCreateRequest
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	if req.Username == "" {
		return 0, nil, core.Fail(400, "missing field \"username\"")
	}
	u, err := s.core.CreateUser(r.Context(), a, core.NewUser{Username: req.Username, DisplayName: req.DisplayName, Email: req.Email})
	if err != nil {
		return 0, nil, err
	}
	w.Header().Set("Location", "/api/v1/users/"+u.Username)
	return http.StatusCreated, toAPIUser(u), nil
}

// apiUserByPath loads the user named in the path, or 404.
func (s *API) apiUserByPath(r *http.Request) (store.User, error) {
	name := r.PathValue("username")
	u, err := s.store.UserByName(r.Context(), name)
	if errors.Is(err, store.ErrNotFound) {
		return store.User{}, core.Fail(404, "no user %q", name)
	}
	return u, err
}

// apiUserGet is GET /api/v1/users/{username}.
func (s *API) apiUserGet(w http.ResponseWriter, r *http.Request, a core.Actor) (int, any, error) {
	u, err := s.apiUserByPath(r)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, toAPIUser(u), nil
}
