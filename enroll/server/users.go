package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/totpbox/totpbox/enroll/store"
)

// newUser is what creating a user takes, from a form or the API.
type newUser struct {
	Username    string
	DisplayName string
	Email       string
	Password    string // optional: without one the user cannot sign in to the portal
	Admin       bool
}

// createUser validates and stores a new user.
func (s *Server) createUser(ctx context.Context, a actor, in newUser) (store.User, error) {
	name, err := cleanUsername(in.Username)
	if err != nil {
		return store.User{}, fail(400, "%v", err)
	}
	display, err := cleanDisplayName(in.DisplayName)
	if err != nil {
		return store.User{}, fail(400, "%v", err)
	}
	email, err := cleanEmail(in.Email)
	if err != nil {
		return store.User{}, fail(400, "%v", err)
	}
	u := store.User{Username: name, DisplayName: display, Email: email, Admin: in.Admin}
	if in.Password != "" {
		if err := checkPassword(in.Password); err != nil {
			return store.User{}, fail(400, "%v", err)
		}
		if u.PasswordHash, err = store.HashPassword(in.Password); err != nil {
			return store.User{}, err
		}
	}
	if err := s.store.CreateUser(ctx, &u); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return store.User{}, fail(409, "user %q already exists", name)
		}
		return store.User{}, err
	}
	role := "user"
	if u.Admin {
		role = "admin"
	}
	s.audit(ctx, a, "user.create", "user:"+u.Username, role)
	return u, nil
}

// setDisabled disables or enables a user; disabling ends their sessions.
func (s *Server) setDisabled(ctx context.Context, a actor, u store.User, disabled bool) error {
	if u.Disabled == disabled {
		return nil
	}
	if disabled && u.Admin {
		n, err := s.store.CountAdmins(ctx)
		if err != nil {
			return err
		}
		if n <= 1 {
			return fail(409, "%q is the last admin; create another admin first", u.Username)
		}
	}
	u.Disabled = disabled
	if err := s.store.UpdateUser(ctx, u); err != nil {
		return err
	}
	s.cache.invalidate(u.Username)
	action := "user.enable"
	if disabled {
		action = "user.disable"
		if err := s.store.DeleteUserSessions(ctx, u.ID); err != nil {
			return err
		}
	}
	s.audit(ctx, a, action, "user:"+u.Username, "")
	return nil
}

// setPassword sets a user's password and ends their sessions.
func (s *Server) setPassword(ctx context.Context, a actor, u store.User, password string) error {
	if err := checkPassword(password); err != nil {
		return fail(400, "%v", err)
	}
	h, err := store.HashPassword(password)
	if err != nil {
		return err
	}
	u.PasswordHash = h
	if err := s.store.UpdateUser(ctx, u); err != nil {
		return err
	}
	if err := s.store.DeleteUserSessions(ctx, u.ID); err != nil {
		return err
	}
	s.audit(ctx, a, "user.password", "user:"+u.Username, "password set")
	return nil
}

// CreateAdmin creates an admin who signs in with password; it is what
// `totpserver admin create` calls. The error names what was wrong.
func CreateAdmin(ctx context.Context, st store.Store, username, password string) (store.User, error) {
	if err := checkPassword(password); err != nil {
		return store.User{}, err
	}
	s := &Server{store: st, clock: realClock{}, log: slog.Default()}
	u, err := s.createUser(ctx, actor{name: "cli"}, newUser{Username: username, Password: password, Admin: true})
	if err != nil {
		return store.User{}, fmt.Errorf("create admin: %w", err)
	}
	return u, nil
}
