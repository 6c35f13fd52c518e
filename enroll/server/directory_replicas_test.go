package server

import (
	"testing"
	"time"

	"github.com/totpbox/totpbox/enroll"
	"github.com/totpbox/totpbox/enroll/server/directory"
	"github.com/totpbox/totpbox/enroll/server/directory/ldaptest"
	"github.com/totpbox/totpbox/internal/testkit"
)

// TestDirectoryLeaverTwoReplicas: a user removed from the group in slapd
// has their codes refused on both of two replicas (PostgreSQL) after one
// directory sync, their MFA device kept; back in the group, after the
// next sync their codes work again on both.
func TestDirectoryLeaverTwoReplicas(t *testing.T) {
	s := ldaptest.Start(t, ldaptest.Options{})
	s.Add(ldaptest.Person("dana", "Dana Example", "dana@example.org", "dana-pw") +
		ldaptest.Person("eve", "Eve Example", "eve@example.org", "eve-pw") +
		ldaptest.Group("kiosk", ldaptest.PersonDN("dana"), ldaptest.PersonDN("eve")))
	ldap, err := directory.NewLDAP(directory.LDAPConfig{URL: s.URL, BaseDN: "ou=people," + ldaptest.Suffix,
		UserFilter: "(objectClass=inetOrgPerson)", MemberOfGroup: ldaptest.GroupDN("kiosk"), SyncInterval: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	hs := replicas(t, 2, func(c *Config) { c.Directory = ldap })
	a, b := hs[0], hs[1]
	// One sync, as `totpserver directory sync` runs it, through replica
	// A's core and store.
	y := directory.NewSyncer(ldap, a.srv.Core(), a.st, testkit.Quiet(), "test", time.Minute)
	sync := func(want string) {
		t.Helper()
		r, err := y.Sync(t.Context())
		if err != nil || r.String() != want {
			t.Fatalf("directory sync = %q, %v; want %q", r.String(), err, want)
		}
	}
	sync("created 2, updated 0, disabled 0, re-enabled 0, unchanged 0")
	k, _ := a.registered("dana", "token")
	verify := func(h *harness) bool {
		t.Helper()
		h.clock.Advance(30 * time.Second) // a fresh code each time
		status, v := h.call("POST", "/api/v1/verify", map[string]any{"username": "dana", "code": enroll.Code(k, h.clock.Now())})
		return status == 200 && v["ok"] == true
	}
	if !verify(a) || !verify(b) {
		t.Fatal("dana's codes refused while she is in the group")
	}

	s.Modify("dn: " + ldaptest.GroupDN("kiosk") + "\nchangetype: modify\ndelete: member\nmember: " + ldaptest.PersonDN("dana") + "\n")
	sync("created 0, updated 0, disabled 1, re-enabled 0, unchanged 1")
	if verify(a) || verify(b) {
		t.Fatal("a leaver's code accepted after the sync")
	}
	for _, h := range hs {
		devs := h.mustCall(200, "GET", "/api/v1/users/dana/mfa-devices", nil)
		if list, _ := devs["mfa_devices"].([]any); len(list) != 1 {
			t.Fatalf("dana's devices after she left = %v, want the one kept", devs)
		}
	}

	s.Modify("dn: " + ldaptest.GroupDN("kiosk") + "\nchangetype: modify\nadd: member\nmember: " + ldaptest.PersonDN("dana") + "\n")
	sync("created 0, updated 0, disabled 0, re-enabled 1, unchanged 1")
	if !verify(a) || !verify(b) {
		t.Fatal("dana's codes refused after she came back to the group")
	}
}
