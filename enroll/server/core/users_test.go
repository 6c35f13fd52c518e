package core

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/totpbox/totpbox/enroll/store"
)

// TestCreateUser: what a new user's fields refuse, with the status and
// a message naming the field, and that a password set at creation signs
// in.
func TestCreateUser(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		in     NewUser
		status int
		msg    string
	}{
		{"plain user", NewUser{Username: "alice", DisplayName: "Alice A.", Email: "alice@example.com"}, 0, ""},
		{"admin with a password", NewUser{Username: "root", Password: "correct horse battery", Admin: true}, 0, ""},
		{"taken name", NewUser{Username: "alice"}, 409, `user "alice" already exists`},
		{"empty name", NewUser{Username: ""}, 400, "username"},
		{"bad email", NewUser{Username: "bob", Email: "not an address"}, 400, "not a valid address"},
		{"short password", NewUser{Username: "bob", Password: "short"}, 400, "password"},
	} {
		_, err := f.core.CreateUser(ctx, System, tc.in)
		failure(t, tc.name, err, tc.status, tc.msg)
	}
	for _, c := range []struct {
		user, password string
		want           bool
	}{
		{"root", "correct horse battery", true},
		{"root", "wrong horse battery", false},
		{"alice", "", false},
		{"nobody", "correct horse battery", false},
	} {
		if ok, err := f.core.CheckPassword(ctx, c.user, c.password); ok != c.want || err != nil {
			t.Errorf("CheckPassword(%s, %q) = %v, %v; want %v", c.user, c.password, ok, err, c.want)
		}
	}
	if n := count(f.actions(), "user.create"); n != 2 {
		t.Errorf("%d user.create events, want 2: %v", n, f.actions())
	}
}

// TestLastAdmin: the last enabled admin cannot be disabled; with a second
// one, either can; a disabled user's password no longer signs in, and
// setting a password ends the user's sessions.
func TestLastAdmin(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	root, err := f.core.CreateUser(ctx, System, NewUser{Username: "root", Password: "correct horse battery", Admin: true})
	if err != nil {
		t.Fatal(err)
	}
	failure(t, "disable the last admin", f.core.SetDisabled(ctx, System, root, true), 409, "is the last admin")
	if _, err := f.core.CreateUser(ctx, System, NewUser{Username: "root2", Admin: true}); err != nil {
		t.Fatal(err)
	}
	if err := f.core.SetDisabled(ctx, System, root, true); err != nil {
		t.Fatalf("disable one of two admins: %v", err)
	}
	if ok, _ := f.core.CheckPassword(ctx, "root", "correct horse battery"); ok {
		t.Error("a disabled admin's password still signs in")
	}
	root.Disabled = true
	if err := f.core.SetDisabled(ctx, System, root, false); err != nil {
		t.Fatal(err)
	}
	root.Disabled = false
	if err := f.st.CreateSession(ctx, store.Session{Hash: []byte("0123456789abcdef0123456789abcdef"), UserID: root.ID, Created: start, ExpiresAt: start.Add(time.Hour), CSRF: "x"}); err != nil {
		t.Fatal(err)
	}
	failure(t, "a short password", f.core.SetPassword(ctx, System, root, "short"), 400, "password")
	if err := f.core.SetPassword(ctx, System, root, "another long passphrase"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.SessionByHash(ctx, []byte("0123456789abcdef0123456789abcdef")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("session after a password change: %v, want gone", err)
	}
	if ok, _ := f.core.CheckPassword(ctx, "root", "another long passphrase"); !ok {
		t.Error("the new password does not sign in")
	}
	acts := f.actions()
	for _, a := range []string{"user.disable", "user.enable", "user.password"} {
		if !slices.Contains(acts, a) {
			t.Errorf("audit %v lacks %s", acts, a)
		}
	}
}

// TestPasswordRehash: a hash made with weaker parameters than the
// configured ones is made again at the next right password, and left
// alone after a wrong one.
func TestPasswordRehash(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	weak := store.PasswordParams{Time: 1, MemoryKiB: 32, Threads: 1, SaltLen: 16, KeyLen: 32}
	h, err := weak.Hash("correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	u := store.User{Username: "olga", PasswordHash: h}
	if err := f.st.CreateUser(ctx, &u); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		password string
		ok       bool
		rehashed bool
	}{
		{"wrong horse battery", false, false},
		{"correct horse battery", true, true},
	} {
		ok, err := f.core.CheckPassword(ctx, "olga", c.password)
		if ok != c.ok || err != nil {
			t.Fatalf("CheckPassword(%q) = %v, %v", c.password, ok, err)
		}
		cur, err := f.st.UserByID(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got := cur.PasswordHash != h; got != c.rehashed {
			t.Errorf("after %q the hash changed: %v, want %v", c.password, got, c.rehashed)
		}
		if c.rehashed && f.core.passwords().NeedsRehash(cur.PasswordHash) {
			t.Errorf("the new hash still needs a rehash")
		}
	}
	if ok, _ := f.core.CheckPassword(ctx, "olga", "correct horse battery"); !ok {
		t.Error("the rehashed password does not sign in")
	}
}

// directory is a PasswordChecker with one password per user; down makes
// it fail to answer.
type directory struct {
	passwords map[string]string
	down      bool
}

func (d *directory) Authenticate(username, password string) error {
	if d.down {
		return errors.New("ldap: connection refused")
	}
	if p, ok := d.passwords[username]; !ok || p != password {
		return ErrBadPassword
	}
	return nil
}

// TestDirectoryUsers: a sync creates, adopts, updates, disables and
// re-enables users, writing nothing when nothing changed; a user from the
// directory signs in by the directory's password, and not at all while
// it is down.
func TestDirectoryUsers(t *testing.T) {
	dir := &directory{passwords: map[string]string{"lena": "directory secret"}}
	f := newFixture(t, func(c *Config) { c.Directory = dir })
	ctx := context.Background()
	local := f.user("max")
	if _, err := f.core.CreateUser(ctx, System, NewUser{Username: "root", Admin: true}); err != nil {
		t.Fatal(err)
	}
	yes := true
	steps := []struct {
		name string
		du   DirectoryUser
		want DirectoryOutcome
	}{
		{"new user", DirectoryUser{Source: SourceLDAP, ExternalID: "uid=lena", Username: "lena", DisplayName: "Lena"}, DirectoryCreated},
		{"the same again", DirectoryUser{Source: SourceLDAP, ExternalID: "uid=lena", Username: "lena", DisplayName: "Lena"}, DirectoryUnchanged},
		{"new name and admin", DirectoryUser{Source: SourceLDAP, ExternalID: "uid=lena", Username: "lena", DisplayName: "Lena L.", Admin: &yes}, DirectoryUpdated},
		{"disabled in the directory", DirectoryUser{Source: SourceLDAP, ExternalID: "uid=lena", Username: "lena", DisplayName: "Lena L.", Admin: &yes, Disabled: true}, DirectoryDisabled},
		{"enabled again", DirectoryUser{Source: SourceLDAP, ExternalID: "uid=lena", Username: "lena", DisplayName: "Lena L.", Admin: &yes}, DirectoryReenabled},
		{"a local user adopted", DirectoryUser{Source: SourceLDAP, ExternalID: "uid=max", Username: "max", DisplayName: "Max M."}, DirectoryUpdated},
	}
	for _, s := range steps {
		got, _, err := f.core.ApplyDirectoryUser(ctx, System, s.du)
		if err != nil || got != s.want {
			t.Fatalf("%s: %v, %v; want %v", s.name, got, err, s.want)
		}
	}
	if !slices.Contains(f.actions(), "user.adopt") {
		t.Errorf("the adoption was not audited: %v", f.actions())
	}
	if l, err := f.core.UserLink(ctx, local); l.Source != SourceLDAP || err != nil {
		t.Errorf("source of the adopted user = %q, %v", l.Source, err)
	}
	_, _, err := f.core.ApplyDirectoryUser(ctx, System, DirectoryUser{Source: SourceLDAP, ExternalID: "uid=other", Username: "lena"})
	failure(t, "another entry with a taken name", err, 409, "already belongs to ldap entry uid=lena")
	_, _, err = f.core.ApplyDirectoryUser(ctx, System, DirectoryUser{Source: SourceLDAP, ExternalID: "uid=bad", Username: "a b/c"})
	failure(t, "a username our rules refuse", err, 400, "username")

	for _, c := range []struct {
		password string
		down     bool
		ok       bool
		err      error
	}{
		{"directory secret", false, true, nil},
		{"wrong", false, false, nil},
		{"directory secret", true, false, ErrDirectoryUnavailable},
	} {
		dir.down = c.down
		ok, err := f.core.CheckPassword(ctx, "lena", c.password)
		if ok != c.ok || !errors.Is(err, c.err) {
			t.Errorf("CheckPassword(lena, %q) with the directory down %v = %v, %v; want %v, %v", c.password, c.down, ok, err, c.ok, c.err)
		}
	}
	dir.down = false

	u, err := f.st.UserByName(ctx, "lena")
	if err != nil {
		t.Fatal(err)
	}
	l, err := f.st.UserLink(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := f.core.DirectoryUserLeft(ctx, System, l); got != DirectoryDisabled || err != nil {
		t.Fatalf("user left = %v, %v", got, err)
	}
	if ok, _ := f.core.CheckPassword(ctx, "lena", "directory secret"); ok {
		t.Error("a user who left the directory still signs in")
	}
	if got, err := f.core.DirectoryUserLeft(ctx, System, l); got != DirectoryUnchanged || err != nil {
		t.Errorf("user left twice = %v, %v; want unchanged", got, err)
	}
}

// TestDirectoryOwnsItsUsers: what a user's identity source owns cannot be
// changed here. No password is set for a user from the LDAP directory or
// from SCIM (their password is not kept here; a local user's is set); a
// user the directory disabled is not enabled here, while one an admin
// disabled here (a leaver the directory has not seen yet) is.
func TestDirectoryOwnsItsUsers(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	local := f.user("max")
	apply := func(du DirectoryUser) store.User {
		t.Helper()
		_, u, err := f.core.ApplyDirectoryUser(ctx, System, du)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	lena := apply(DirectoryUser{Source: SourceLDAP, ExternalID: "uid=lena,ou=people", Username: "lena"})
	sam := apply(DirectoryUser{Source: SourceSCIM, ExternalID: "00u1", Username: "sam"})

	failure(t, "a local user's password", f.core.SetPassword(ctx, System, local, "a long enough password"), 0, "")
	failure(t, "an LDAP user's password", f.core.SetPassword(ctx, System, lena, "a long enough password"), 409,
		`no password set: "lena" comes from the LDAP directory, and their password is not kept here`)
	failure(t, "a SCIM user's password", f.core.SetPassword(ctx, System, sam, "a long enough password"), 409,
		`"sam" comes from SCIM provisioning`)
	for _, u := range []store.User{lena, sam} {
		if got, err := f.st.UserByID(ctx, u.ID); err != nil || got.PasswordHash != "" {
			t.Errorf("%s: password hash %q, %v after a refused set; want none", u.Username, got.PasswordHash, err)
		}
	}

	// Disabled here by an admin: enabled here again.
	failure(t, "disable an LDAP user here", f.core.SetDisabled(ctx, System, lena, true), 0, "")
	lena, _ = f.st.UserByID(ctx, lena.ID)
	failure(t, "enable the user an admin disabled", f.core.SetDisabled(ctx, System, lena, false), 0, "")
	// Disabled by the directory: enabled only there.
	lena = apply(DirectoryUser{Source: SourceLDAP, ExternalID: "uid=lena,ou=people", Username: "lena", Disabled: true})
	failure(t, "enable the user the directory disabled", f.core.SetDisabled(ctx, System, lena, false), 409,
		`cannot enable "lena": the LDAP directory disabled them; enable them there`)
	if got, _ := f.st.UserByID(ctx, lena.ID); !got.Disabled {
		t.Error("lena was enabled against the directory")
	}
	if l, err := f.core.UserLink(ctx, local); err != nil || l.Source != "" {
		t.Errorf("local user's link = %+v, %v; want none", l, err)
	}
}
