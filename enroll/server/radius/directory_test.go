package radius_test

import (
	"testing"
	"time"

	"github.com/totpbox/totpbox/enroll/server/directory"
	"github.com/totpbox/totpbox/enroll/server/directory/ldaptest"
	rad "github.com/totpbox/totpbox/enroll/server/radius"
	"github.com/totpbox/totpbox/internal/testkit"
)

// TestRadclientDirectoryPassword: a directory user signs in with RADIUS
// password+code (FreeRADIUS's radclient) with their password in slapd;
// once it is changed there, the new password is accepted and the old one
// refused at once, with no sync in between: the password is checked by
// a bind as the user, never stored here.
func TestRadclientDirectoryPassword(t *testing.T) {
	need(t, "radclient", "freeradius-utils")
	s := ldaptest.Start(t, ldaptest.Options{})
	s.Add(ldaptest.Person("carol", "Carol Example", "carol@example.org", "carol-pw-1") +
		ldaptest.Person("eve", "Eve Example", "eve@example.org", "eve-pw") +
		ldaptest.Group("vpn", ldaptest.PersonDN("carol"), ldaptest.PersonDN("eve")))
	ldap, err := directory.NewLDAP(directory.LDAPConfig{URL: s.URL, BaseDN: "ou=people," + ldaptest.Suffix,
		UserFilter: "(objectClass=inetOrgPerson)", MemberOfGroup: ldaptest.GroupDN("vpn"), SyncInterval: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	r := newRigWith(t, ldap, func(c *rad.Config) { c.Clients[0].Mode = rad.ModePasswordCode })
	if res, err := directory.NewSyncer(ldap, r.core, r.st, testkit.Quiet(), "test", time.Minute).Sync(t.Context()); err != nil || res.Created != 2 {
		t.Fatalf("directory sync = %+v, %v; want 2 created", res, err)
	}
	u, err := r.st.UserByName(t.Context(), "carol")
	if err != nil {
		t.Fatal(err)
	}
	if u.PasswordHash != "" {
		t.Fatalf("carol has a password hash here: %q", u.PasswordHash)
	}
	k := r.device(u)
	ask := func(password string) string {
		t.Helper()
		r.clock.Advance(30 * time.Second) // a fresh code each time
		return received(radclient(t, r.addr, testSecret,
			`User-Name = "carol", User-Password = "`+password+r.code(k)+`", NAS-Identifier = "vpn", Message-Authenticator = 0x00`))
	}
	if got := ask("carol-pw-1"); got != "Access-Accept" {
		t.Fatalf("directory password + code = %s, want Access-Accept", got)
	}
	if got := ask("wrong-pw"); got != "Access-Reject" {
		t.Fatalf("wrong password + code = %s, want Access-Reject", got)
	}
	s.Modify("dn: " + ldaptest.PersonDN("carol") + "\nchangetype: modify\nreplace: userPassword\nuserPassword: carol-pw-2\n")
	if got := ask("carol-pw-2"); got != "Access-Accept" {
		t.Errorf("changed password + code = %s, want Access-Accept at once", got)
	}
	if got := ask("carol-pw-1"); got != "Access-Reject" {
		t.Errorf("old password + code = %s, want Access-Reject at once", got)
	}
}
