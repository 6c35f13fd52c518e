package core

import (
	"context"
	"errors"
	"sync"

	"github.com/totpbox/totpbox/enroll/store"
)

var (
	dummyHashOnce sync.Once
	dummyHash     string
)

// CheckUserPassword reports whether password is u's, spending the same
// time whether or not the user was found (found) or has a password, so
// that the answer's timing does not tell which usernames exist.
func CheckUserPassword(u store.User, found bool, password string) bool {
	if !found || u.PasswordHash == "" {
		dummyHashOnce.Do(func() { dummyHash, _ = store.HashPassword("not a real password") })
		store.CheckPassword(dummyHash, password)
		return false
	}
	return store.CheckPassword(u.PasswordHash, password)
}

// CheckPassword reports whether password is the password of username, an
// enabled user, for sign-in steps outside the console (RADIUS). An unknown
// user, a user without a password and a disabled user all get false, after
// the same work. It rate-limits nothing: callers apply their sign-in
// limits first.
func (s *Core) CheckPassword(ctx context.Context, username, password string) (bool, error) {
	u, err := s.store.UserByName(ctx, username)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return false, err
	}
	ok := CheckUserPassword(u, err == nil, password)
	if ok && !u.Disabled {
		s.RehashPassword(ctx, u, password)
	}
	return ok && !u.Disabled, nil
}

// passwords returns the parameters of new password hashes.
func (s *Core) passwords() store.PasswordParams {
	if s.cfg.Passwords == (store.PasswordParams{}) {
		return store.DefaultPasswordParams
	}
	return s.cfg.Passwords
}

// RehashPassword hashes password, which has just signed u in, again when
// u's stored hash was made with other parameters than Config.Passwords
// (store.PasswordParams.NeedsRehash): raising the parameters reaches each
// user at their next sign-in. A failure is logged, never the sign-in's:
// the old hash still works.
func (s *Core) RehashPassword(ctx context.Context, u store.User, password string) {
	p := s.passwords()
	if !p.NeedsRehash(u.PasswordHash) {
		return
	}
	h, err := p.Hash(password)
	if err == nil {
		u.PasswordHash = h
		err = s.store.UpdateUser(ctx, u)
	}
	if err != nil {
		s.log.Warn("rehash password", "user", u.Username, "err", err)
		return
	}
	s.log.Info("password hashed again with the configured parameters", "user", u.Username)
}
