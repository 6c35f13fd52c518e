package server

import (
	"context"
	"strings"
	"testing"

	"github.com/totpbox/totpbox/enroll/store"
	"github.com/totpbox/totpbox/enroll/store/storetest"
)

// TestSignInRehashesWithRaisedParameters checks that raising the argon2id
// parameters reaches a stored hash at its owner's next sign-in: the hash
// is made again with the configured parameters, the password still signs
// in, and a wrong password changes nothing.
func TestSignInRehashesWithRaisedParameters(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) store.Store) {
		st := open(t)
		raised := store.DefaultPasswordParams
		raised.MemoryKiB += 1024
		raised.Time++
		h := newHarness(t, st, func(c *Config) { c.Passwords = raised })
		h.admin() // hashed as totpserver admin create does: the defaults
		hash := func() string {
			t.Helper()
			u, err := st.UserByName(context.Background(), "root")
			if err != nil {
				t.Fatal(err)
			}
			return u.PasswordHash
		}
		before := hash()
		if !raised.NeedsRehash(before) || store.PasswordNeedsRehash(before) {
			t.Fatalf("the admin's hash %q is not the defaults'", before[:strings.LastIndex(before, "$")])
		}

		h.browser().post("/signin", map[string][]string{"username": {"root"}, "password": {"wrong"}}, "")
		if hash() != before {
			t.Fatal("a wrong password rehashed the stored hash")
		}

		h.browser().signIn("root", adminPassword, nil, h.clock)
		after := hash()
		if raised.NeedsRehash(after) {
			t.Fatalf("after sign-in the hash is %q, want m=%d,t=%d", after[:strings.LastIndex(after, "$")], raised.MemoryKiB, raised.Time)
		}
		if !store.CheckPassword(after, adminPassword) {
			t.Fatal("the new hash does not match the password")
		}
		h.browser().signIn("root", adminPassword, nil, h.clock) // and signs in again
	})
}
