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

// CheckUserPassword reports whether password is u's local password,
// spending the same time whether or not the user was found (found) or has
// a password, so that the answer's timing does not tell which usernames
// exist. A directory user's password is checked by VerifyPassword.
func CheckUserPassword(u store.User, found bool, password string) bool {
	if !found || u.PasswordHash == "" {
		dummyHashOnce.Do(func() { dummyHash, _ = store.HashPassword("not a real password") })
		store.CheckPassword(dummyHash, password)
		return false
	}
	return store.CheckPassword(u.PasswordHash, password)
}

// PasswordChecker checks a directory user's password where it lives: the
// LDAP directory binds as the user.
type PasswordChecker interface {
	// Authenticate returns nil for the right password, ErrBadPassword (or
	// an error wrapping it) for a wrong one or an unknown user, and any
	// other error when the directory could not say.
	Authenticate(username, password string) error
}

// ErrBadPassword is what a PasswordChecker returns for a wrong password.
var ErrBadPassword = errors.New("wrong password")

// ErrDirectoryUnavailable: the user's password lives in a directory that
// could not be asked. The sign-in is refused, never passed to an old
// local password.
var ErrDirectoryUnavailable = errors.New("the directory cannot check passwords now")

// VerifyPassword reports whether password is u's: a local user's against
// its hash (CheckUserPassword), a user from the LDAP directory by the
// directory, with no password stored here. It returns
// ErrDirectoryUnavailable when the directory could not say (down, or not
// configured for a user linked to it). found is whether u was found.
func (s *Core) VerifyPassword(ctx context.Context, u store.User, found bool, password string) (bool, error) {
	if found {
		l, err := s.store.UserLink(ctx, u.ID)
		switch {
		case err == nil && l.Source == SourceLDAP:
			if s.cfg.Directory == nil {
				s.log.Warn("sign-in refused: the user comes from the LDAP directory, which is not configured", "user", u.Username)
				return false, ErrDirectoryUnavailable
			}
			err := s.cfg.Directory.Authenticate(u.Username, password)
			switch {
			case err == nil:
				return true, nil
			case errors.Is(err, ErrBadPassword):
				return false, nil
			}
			s.log.Warn("sign-in refused: the directory could not check the password", "user", u.Username, "err", err)
			return false, ErrDirectoryUnavailable
		case err != nil && !errors.Is(err, store.ErrNotFound):
			return false, err
		}
	}
	ok := CheckUserPassword(u, found, password)
	if ok && !u.Disabled {
		s.RehashPassword(ctx, u, password)
	}
	return ok, nil
}

// SourceLDAP is the identity source of users read from the LDAP
// directory.
const SourceLDAP = "ldap"

// SourceSCIM is the identity source of users provisioned over SCIM 2.0
// (enroll/server/scim): they have no password here and sign in through
// the identity provider.
const SourceSCIM = "scim"

// CheckPassword reports whether password is the password of username, an
// enabled user, for sign-in steps outside the console (RADIUS). An unknown
// user, a user without a password and a disabled user all get false, after
// the same work; a directory that cannot say is an error. It rate-limits
// nothing: callers apply their sign-in limits first.
func (s *Core) CheckPassword(ctx context.Context, username, password string) (bool, error) {
	u, err := s.store.UserByName(ctx, username)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return false, err
	}
	ok, err := s.VerifyPassword(ctx, u, err == nil, password)
	return ok && !u.Disabled, err
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
