package directory

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/totpbox/totpbox/enroll/server/appliance"
	"github.com/totpbox/totpbox/enroll/server/core"
	"github.com/totpbox/totpbox/enroll/server/directory/ldaptest"
	"github.com/totpbox/totpbox/enroll/store"
	"github.com/totpbox/totpbox/enroll/store/storetest"
	"github.com/totpbox/totpbox/internal/testkit"
)

// newCore returns a core over st with a fresh master key.
func newCore(t testing.TB, st store.Store) *core.Core {
	t.Helper()
	key := make([]byte, store.KeySize)
	for i := range key {
		key[i] = byte(i)
	}
	sealer, err := store.NewSealer(store.MasterKey{ID: store.KeyID(key), Key: key})
	if err != nil {
		t.Fatal(err)
	}
	apps, err := appliance.New(appliance.Config{Store: st, Logger: testkit.Quiet()})
	if err != nil {
		t.Fatal(err)
	}
	c, err := core.New(core.Config{Store: st, Sealer: sealer, Appliances: apps, Logger: testkit.Quiet(), CacheTTL: -1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// countingStore counts the store's writes of users and links, to show an
// unchanged re-sync writes nothing.
type countingStore struct {
	store.Store
	writes int
}

func (c *countingStore) CreateUser(ctx context.Context, u *store.User) error {
	c.writes++
	return c.Store.CreateUser(ctx, u)
}
func (c *countingStore) UpdateUser(ctx context.Context, u store.User) error {
	c.writes++
	return c.Store.UpdateUser(ctx, u)
}
func (c *countingStore) LinkUser(ctx context.Context, l store.DirectoryLink) error {
	c.writes++
	return c.Store.LinkUser(ctx, l)
}

func TestSyncAgainstSlapd(t *testing.T) {
	ctx := context.Background()
	s := ldaptest.Start(t, ldaptest.Options{})
	seedDirectory(s)
	// A name our rules refuse (a space) is skipped and listed.
	s.Add(ldaptest.Person("bad name", "Bad", "bad@example.org", "x") + "dn: " + ldaptest.GroupDN("kiosk") + "\nchangetype: modify\nadd: member\nmember: " + ldaptest.PersonDN("bad name") + "\n")
	st := &countingStore{Store: storetest.OpenSQLite(t)}
	c := newCore(t, st)
	// A local user who is also in the directory is adopted, keeping their
	// MFA devices; a local user who is not stays as they are.
	for _, name := range []string{"staff-01", "local-only"} {
		if _, err := c.CreateUser(ctx, core.Actor{Name: "admin", Role: core.RoleAdmin}, core.NewUser{Username: name}); err != nil {
			t.Fatal(err)
		}
	}
	l, err := NewLDAP(testConfig(s))
	if err != nil {
		t.Fatal(err)
	}
	y := NewSyncer(l, c, st, testkit.Quiet(), "test", DefaultSyncInterval)

	r, err := y.Sync(ctx)
	if err != nil {
		t.Fatalf("first sync: %v", err)
	}
	if got, want := r.String(), "created 41, updated 1, disabled 0, re-enabled 0, unchanged 0, skipped 1"; got != want {
		t.Errorf("first sync = %q, want %q", got, want)
	}
	if len(r.Skipped) != 1 || !strings.Contains(r.Skipped[0], "uid=bad name") {
		t.Errorf("skipped = %q, want the entry with a space in its name", r.Skipped)
	}
	if u, _ := st.UserByName(ctx, "admins-01"); !u.Admin || u.DisplayName != "Admin 1" || u.Email != "admin1@example.org" {
		t.Errorf("admins-01 = %+v, want an admin with the directory's name and email", u)
	}
	if l, _ := c.UserLink(ctx, mustUser(t, st, "staff-01")); l.Source != "ldap" {
		t.Errorf("staff-01's source = %q, want ldap (adopted)", l.Source)
	}
	if l, _ := c.UserLink(ctx, mustUser(t, st, "local-only")); l.Source != "" {
		t.Errorf("local-only's source = %q, want local", l.Source)
	}

	// An unchanged directory: the re-sync writes nothing.
	st.writes = 0
	r, err = y.Sync(ctx)
	if err != nil || r.String() != "created 0, updated 0, disabled 0, re-enabled 0, unchanged 42, skipped 1" || st.writes != 0 {
		t.Fatalf("unchanged re-sync = %q, %v with %d writes; want 42 unchanged and no writes", r, err, st.writes)
	}

	// A leaver (out of the nested group), a user disabled in AD, a
	// renamed one; an admin disabled by hand stays disabled.
	s.Modify("dn: " + ldaptest.GroupDN("store-12") + "\nchangetype: modify\ndelete: member\nmember: " + ldaptest.PersonDN("staff-35") + "\n")
	s.Modify("dn: " + ldaptest.PersonDN("staff-05") + "\nchangetype: modify\nreplace: userAccountControl\nuserAccountControl: 514\n")
	s.Modify("dn: " + ldaptest.PersonDN("staff-06") + "\nchangetype: modify\nreplace: cn\ncn: Staff Six\n")
	if err := c.SetDisabled(ctx, core.Actor{Name: "admin", Role: core.RoleAdmin}, mustUser(t, st, "staff-07"), true); err != nil {
		t.Fatal(err)
	}
	r, err = y.Sync(ctx)
	if err != nil || r.String() != "created 0, updated 1, disabled 2, re-enabled 0, unchanged 39, skipped 1" {
		t.Fatalf("sync after changes = %q, %v", r, err)
	}
	for name, disabled := range map[string]bool{"staff-35": true, "staff-05": true, "staff-07": true, "staff-06": false} {
		if u := mustUser(t, st, name); u.Disabled != disabled {
			t.Errorf("%s disabled = %v, want %v", name, u.Disabled, disabled)
		}
	}

	// Back in the group and enabled in AD: enabled again; the user an
	// admin disabled is not.
	s.Modify("dn: " + ldaptest.GroupDN("store-12") + "\nchangetype: modify\nadd: member\nmember: " + ldaptest.PersonDN("staff-35") + "\n")
	s.Modify("dn: " + ldaptest.PersonDN("staff-05") + "\nchangetype: modify\nreplace: userAccountControl\nuserAccountControl: 512\n")
	r, err = y.Sync(ctx)
	if err != nil || r.Reenabled != 2 {
		t.Fatalf("sync after their return = %q, %v; want 2 re-enabled", r, err)
	}
	if mustUser(t, st, "staff-07").Disabled != true {
		t.Error("the sync enabled a user an admin had disabled")
	}

	// The directory down: an error, and nothing changed.
	down := testConfig(s)
	down.URL = "ldap://127.0.0.1:1"
	ld, _ := NewLDAP(down)
	yd := NewSyncer(ld, c, st, testkit.Quiet(), "test", DefaultSyncInterval)
	st.writes = 0
	if _, err := yd.Sync(ctx); err == nil || st.writes != 0 {
		t.Fatalf("sync with the directory down = %v with %d writes; want an error and no writes", err, st.writes)
	}
	if yd.Status().Err == nil {
		t.Error("Status().Err is nil while the directory is down")
	}
}

func mustUser(t *testing.T, st store.Store, name string) store.User {
	t.Helper()
	u, err := st.UserByName(context.Background(), name)
	if err != nil {
		t.Fatalf("user %s: %v", name, err)
	}
	return u
}

// fakeSource is a directory of n users, for the sync's benchmark.
type fakeSource struct{ entries []Entry }

func (f *fakeSource) Users() ([]Entry, error) { return append([]Entry(nil), f.entries...), nil }
func (f *fakeSource) String() string          { return "fake" }

// BenchmarkSync10000 syncs 10 000 directory users into SQLite: the
// first sync (every user created) and an unchanged re-sync; it reports
// the store writes of each (the re-sync's must be 0).
func BenchmarkSync10000(b *testing.B) {
	ctx := context.Background()
	src := &fakeSource{}
	for i := range 10000 {
		src.entries = append(src.entries, Entry{DN: fmt.Sprintf("uid=u%05d,ou=people,dc=example,dc=org", i),
			Username: fmt.Sprintf("u%05d", i), DisplayName: fmt.Sprintf("User %d", i), Email: fmt.Sprintf("u%d@example.org", i)})
	}
	for b.Loop() {
		b.StopTimer()
		st := &countingStore{Store: storetest.OpenSQLite(b)}
		c := newCore(b, st)
		y := NewSyncer(src, c, st, testkit.Quiet(), "bench", DefaultSyncInterval)
		b.StartTimer()
		if _, err := y.Sync(ctx); err != nil {
			b.Fatal(err)
		}
		first := st.writes
		st.writes = 0
		if _, err := y.Sync(ctx); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(first), "writes-first")
		b.ReportMetric(float64(st.writes), "writes-resync")
	}
}
