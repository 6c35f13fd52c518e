package directory

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/totpbox/totpbox/enroll/server/directory/ldaptest"
	"github.com/totpbox/totpbox/internal/testkit"
)

// seedDirectory fills a slapd with 50 people: staff-01..40 in group
// kiosk (staff-31..40 through the nested group store-12), admins-01..02
// in kiosk-admins and kiosk; outsider-01..08 in no group.
func seedDirectory(s *ldaptest.Server) {
	var b strings.Builder
	for i := 1; i <= 40; i++ {
		b.WriteString(ldaptest.Person(fmt.Sprintf("staff-%02d", i), fmt.Sprintf("Staff %d", i), fmt.Sprintf("staff%d@example.org", i), "pw-"+fmt.Sprint(i)))
	}
	for i := 1; i <= 2; i++ {
		b.WriteString(ldaptest.Person(fmt.Sprintf("admins-%02d", i), fmt.Sprintf("Admin %d", i), fmt.Sprintf("admin%d@example.org", i), "apw"))
	}
	for i := 1; i <= 8; i++ {
		b.WriteString(ldaptest.Person(fmt.Sprintf("outsider-%02d", i), "Outsider", "o@example.org", "opw"))
	}
	var store, kiosk []string
	for i := 31; i <= 40; i++ {
		store = append(store, ldaptest.PersonDN(fmt.Sprintf("staff-%02d", i)))
	}
	for i := 1; i <= 30; i++ {
		kiosk = append(kiosk, ldaptest.PersonDN(fmt.Sprintf("staff-%02d", i)))
	}
	admins := []string{ldaptest.PersonDN("admins-01"), ldaptest.PersonDN("admins-02")}
	b.WriteString(ldaptest.Group("store-12", store...))
	b.WriteString(ldaptest.Group("kiosk-admins", admins...))
	b.WriteString(ldaptest.Group("kiosk", append(kiosk, ldaptest.GroupDN("store-12"), ldaptest.GroupDN("kiosk-admins"))...))
	s.Add(b.String())
}

func testConfig(s *ldaptest.Server) LDAPConfig {
	return LDAPConfig{
		URL:           s.URL,
		BaseDN:        "ou=people," + ldaptest.Suffix,
		UserFilter:    "(objectClass=inetOrgPerson)",
		MemberOfGroup: ldaptest.GroupDN("kiosk"),
		AdminGroup:    ldaptest.GroupDN("kiosk-admins"),
		PageSize:      7,
	}
}

func TestLDAPUsersAgainstSlapd(t *testing.T) {
	s := ldaptest.Start(t, ldaptest.Options{})
	seedDirectory(s)
	l, err := NewLDAP(testConfig(s))
	if err != nil {
		t.Fatal(err)
	}
	users, err := l.Users()
	if err != nil {
		t.Fatalf("Users: %v", err)
	}
	var names []string
	admins := 0
	for _, u := range users {
		names = append(names, u.Username)
		if u.Admin {
			admins++
		}
	}
	slices.Sort(names)
	if len(names) != 42 || names[0] != "admins-01" || names[41] != "staff-40" || slices.Contains(names, "outsider-01") {
		t.Fatalf("Users = %d users %v; want the 40 staff (10 through the nested group) and 2 admins, no outsiders", len(names), names)
	}
	if admins != 2 {
		t.Errorf("%d admins, want 2", admins)
	}
	// AD's userAccountControl, through the test schema: bit 2 disables.
	s.Modify("dn: " + ldaptest.PersonDN("staff-05") + "\nchangetype: modify\nreplace: userAccountControl\nuserAccountControl: 514\n")
	users, _ = l.Users()
	for _, u := range users {
		if u.Disabled != (u.Username == "staff-05") {
			t.Errorf("user %s Disabled = %v", u.Username, u.Disabled)
		}
	}
}

func TestLDAPAuthenticate(t *testing.T) {
	s := ldaptest.Start(t, ldaptest.Options{})
	seedDirectory(s)
	l, err := NewLDAP(testConfig(s))
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Authenticate("staff-07", "pw-7"); err != nil {
		t.Fatalf("Authenticate(right password) = %v", err)
	}
	for _, tt := range []struct{ user, pw string }{{"staff-07", "wrong"}, {"staff-07", ""}, {"nobody", "pw-7"}, {"staff-0*", "pw-7"}} {
		if err := l.Authenticate(tt.user, tt.pw); !errors.Is(err, ErrBadCredentials) {
			t.Errorf("Authenticate(%q, %q) = %v, want ErrBadCredentials", tt.user, tt.pw, err)
		}
	}
	// The password changes in the directory: the new one works at once,
	// the old one no longer.
	s.Modify("dn: " + ldaptest.PersonDN("staff-07") + "\nchangetype: modify\nreplace: userPassword\nuserPassword: new-pw\n")
	if err := l.Authenticate("staff-07", "new-pw"); err != nil {
		t.Errorf("Authenticate(new password) = %v", err)
	}
	if err := l.Authenticate("staff-07", "pw-7"); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("Authenticate(old password) = %v, want ErrBadCredentials", err)
	}
	// A directory that is down is not a wrong password.
	down := testConfig(s)
	down.URL = "ldap://127.0.0.1:1"
	ld, _ := NewLDAP(down)
	if err := ld.Authenticate("staff-07", "new-pw"); err == nil || errors.Is(err, ErrBadCredentials) {
		t.Errorf("Authenticate with the directory down = %v, want an error that is not ErrBadCredentials", err)
	}
}

func TestLDAPConfigValidate(t *testing.T) {
	good := LDAPConfig{URL: "ldaps://dc1.corp.example:636", BaseDN: "dc=corp,dc=example", BindDN: "cn=svc,dc=corp,dc=example", BindPasswordFile: "/etc/x"}
	tests := []struct {
		name string
		edit func(*LDAPConfig)
		want string
	}{
		{"good", func(*LDAPConfig) {}, ""},
		{"plain to a remote host", func(c *LDAPConfig) { c.URL = "ldap://dc1.corp.example" }, "directory.ldap.url: ldap://dc1.corp.example would send passwords in the clear"},
		{"plain allowed", func(c *LDAPConfig) { c.URL = "ldap://dc1.corp.example"; c.AllowInsecure = true }, ""},
		{"plain with StartTLS", func(c *LDAPConfig) { c.URL = "ldap://dc1.corp.example"; c.StartTLS = true }, ""},
		{"plain on loopback", func(c *LDAPConfig) { c.URL = "ldap://127.0.0.1:3890" }, ""},
		{"not a URL", func(c *LDAPConfig) { c.URL = "http://dc1" }, "directory.ldap.url: \"http://dc1\" is not ldap://"},
		{"bad filter", func(c *LDAPConfig) { c.UserFilter = "(objectClass=person" }, "directory.ldap.user_filter:"},
		{"bad group DN", func(c *LDAPConfig) { c.MemberOfGroup = "kiosk users" }, "directory.ldap.member_of_group:"},
		{"no base", func(c *LDAPConfig) { c.BaseDN = "" }, "directory.ldap.base_dn: required"},
		{"no password", func(c *LDAPConfig) { c.BindPasswordFile = "" }, "directory.ldap.bind_dn: give its password"},
		{"credential path", func(c *LDAPConfig) { c.BindPasswordFile = ""; c.BindPasswordCredential = "/x/y" }, "is a credential name, not a path"},
		{"bad attribute", func(c *LDAPConfig) { c.UsernameAttribute = "uid)(x" }, "directory.ldap.username_attribute:"},
		{"StartTLS on ldaps", func(c *LDAPConfig) { c.StartTLS = true }, "directory.ldap.start_tls:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good
			tt.edit(&c)
			err := c.Validate()
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("Validate() = %v, want %q", err, tt.want)
			}
		})
	}
}

// TestLDAPTLS reads users over StartTLS and ldaps with a CA made in the
// test, and refuses a server whose certificate another CA signed.
func TestLDAPTLS(t *testing.T) {
	ca := testkit.NewCA(t)
	cert, key := ca.Issue("ldap", []string{"127.0.0.1"}, testkit.CertOptions{})
	s := ldaptest.Start(t, ldaptest.Options{CertFile: cert, KeyFile: key})
	seedDirectory(s)
	other := testkit.NewCA(t)
	for _, tt := range []struct {
		name     string
		url      string
		startTLS bool
		ca       string
		wantErr  string
	}{
		{"StartTLS", s.URL, true, ca.CertFile, ""},
		{"ldaps", s.TLSURL, false, ca.CertFile, ""},
		{"StartTLS, another CA", s.URL, true, other.CertFile, "certificate"},
		{"ldaps, another CA", s.TLSURL, false, other.CertFile, "certificate"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := testConfig(s)
			c.URL, c.StartTLS, c.CAFile = tt.url, tt.startTLS, tt.ca
			l, err := NewLDAP(c)
			if err != nil {
				t.Fatal(err)
			}
			users, err := l.Users()
			if tt.wantErr == "" && (err != nil || len(users) != 42) {
				t.Fatalf("Users = %d, %v; want 42 users", len(users), err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("Users = %d, %v; want an error about the %s", len(users), err, tt.wantErr)
			}
		})
	}
}
