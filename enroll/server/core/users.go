package core

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/totpbox/totpbox/enroll/store"
	"github.com/totpbox/totpbox/internal/wallclock"
)

// NewUser is what creating a user takes, from a form or the API.
type NewUser struct {
	Username    string
	DisplayName string
	Email       string
	Password    string // optional: without one the user cannot sign in to the portal
	Admin       bool
}

// CreateUser validates and stores a new user.
func (s *Core) CreateUser(ctx context.Context, a Actor, in NewUser) (store.User, error) {
	if err := Allow(a, OpManageUsers); err != nil {
		return store.User{}, err
	}
	name, err := CleanUsername(in.Username)
	if err != nil {
		return store.User{}, Fail(400, "%v", err)
	}
	display, err := cleanDisplayName(in.DisplayName)
	if err != nil {
		return store.User{}, Fail(400, "%v", err)
	}
	email, err := cleanEmail(in.Email)
	if err != nil {
		return store.User{}, Fail(400, "%v", err)
	}
	u := store.User{Username: name, DisplayName: display, Email: email, Admin: in.Admin}
	if in.Password != "" {
		if err := checkPassword(in.Password); err != nil {
			return store.User{}, Fail(400, "%v", err)
		}
		if u.PasswordHash, err = s.passwords().Hash(in.Password); err != nil {
			return store.User{}, err
		}
	}
	role := "user"
	if u.Admin {
		role = "admin"
	}
	if err := s.Atomic(ctx, func(ctx context.Context) error {
		if err := s.store.CreateUser(ctx, &u); err != nil {
			return err
		}
		s.Audit(ctx, a, "user.create", "user:"+u.Username, role)
		return nil
	}); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return store.User{}, Fail(409, "user %q already exists", name)
		}
		return store.User{}, err
	}
	return u, nil
}

// SetDisabled disables or enables a user; disabling ends their sessions.
func (s *Core) SetDisabled(ctx context.Context, a Actor, u store.User, disabled bool) error {
	if err := Allow(a, OpManageUsers); err != nil {
		return err
	}
	if u.Disabled == disabled {
		return nil
	}
	if !disabled {
		// A user their directory disabled comes back when it enables them;
		// one an admin disabled here (a leaver the directory has not seen
		// yet) an admin may enable.
		if l, err := s.UserLink(ctx, u); err != nil {
			return err
		} else if l.DisabledBySource {
			return Fail(409, "cannot enable %q: %s disabled them; enable them there", u.Username, SourceTitle(l.Source))
		}
	}
	if disabled && u.Admin {
		n, err := s.store.CountAdmins(ctx)
		if err != nil {
			return err
		}
		if n <= 1 {
			return Fail(409, "%q is the last admin; create another admin first", u.Username)
		}
	}
	u.Disabled = disabled
	action := "user.enable"
	if disabled {
		action = "user.disable"
	}
	if err := s.Atomic(ctx, func(ctx context.Context) error {
		if err := s.store.UpdateUser(ctx, u); err != nil {
			return err
		}
		if disabled {
			if err := s.store.DeleteUserSessions(ctx, u.ID); err != nil {
				return err
			}
		}
		s.Audit(ctx, a, action, "user:"+u.Username, "")
		return nil
	}); err != nil {
		return err
	}
	s.userChanged(u.Username)
	return nil
}

// SetPassword sets a user's password and ends their sessions.
func (s *Core) SetPassword(ctx context.Context, a Actor, u store.User, password string) error {
	if err := Allow(a, OpManageUsers); err != nil {
		return err
	}
	if l, err := s.UserLink(ctx, u); err != nil {
		return err
	} else if l.Source != "" {
		return Fail(409, "no password set: %q comes from %s, and their password is not kept here", u.Username, SourceTitle(l.Source))
	}
	if err := checkPassword(password); err != nil {
		return Fail(400, "%v", err)
	}
	h, err := s.passwords().Hash(password)
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
	s.Audit(ctx, a, "user.password", "user:"+u.Username, "password set")
	return nil
}

// CreateAdmin creates an admin who signs in with password; it is what
// `totpserver admin create` calls. The error names what was wrong.
func CreateAdmin(ctx context.Context, st store.Store, username, password string) (store.User, error) {
	if err := checkPassword(password); err != nil {
		return store.User{}, err
	}
	s := &Core{store: st, clock: wallclock.Clock{}, log: slog.Default()}
	u, err := s.CreateUser(ctx, Actor{Name: "cli", Role: RoleAdmin}, NewUser{Username: username, Password: password, Admin: true})
	if err != nil {
		return store.User{}, fmt.Errorf("create admin: %w", err)
	}
	return u, nil
}
