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
	return ok && !u.Disabled, nil
}
