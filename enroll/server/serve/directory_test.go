package serve

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/totpbox/totpbox/enroll/server/directory"
	"github.com/totpbox/totpbox/enroll/server/directory/ldaptest"
	"github.com/totpbox/totpbox/internal/testkit"
)

// TestDirectoryUsersSignIn: a server with directory.ldap syncs slapd's
// users as it starts, and they sign in to the portal with their
// directory password (a bind), the new one at once after a change in the
// directory and never the old; with the directory down, the sign-in is
// refused with a clear message and the admin pages show a banner.
func TestDirectoryUsersSignIn(t *testing.T) {
	s := ldaptest.Start(t, ldaptest.Options{})
	s.Add(ldaptest.Person("carol", "Carol Example", "carol@example.org", "carol-pw-1") + ldaptest.Group("kiosk", ldaptest.PersonDN("carol")))
	a, _ := assemble(t, func(c *Config) {
		c.Directory.LDAP = directory.LDAPConfig{URL: s.URL, BaseDN: "ou=people," + ldaptest.Suffix,
			UserFilter: "(objectClass=inetOrgPerson)", MemberOfGroup: ldaptest.GroupDN("kiosk"), SyncInterval: time.Minute}
	})
	ctx, stop := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() { stop(); <-done })
	testkit.WaitFor(t, 10*time.Second, "the first directory sync", func() bool {
		_, err := a.Store().UserByName(context.Background(), "carol")
		return err == nil
	})

	signIn := func(password string) (int, string) {
		t.Helper()
		jar, _ := cookiejar.New(nil)
		c := &http.Client{Jar: jar}
		resp, err := c.PostForm(a.URL()+"/signin", url.Values{"username": {"carol"}, "password": {password}})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := signIn("carol-pw-1"); code != http.StatusOK {
		t.Fatalf("sign-in with the directory password = %d, want 200", code)
	}
	if code, _ := signIn("wrong"); code != http.StatusUnauthorized {
		t.Fatalf("sign-in with a wrong password = %d, want 401", code)
	}
	s.Modify("dn: " + ldaptest.PersonDN("carol") + "\nchangetype: modify\nreplace: userPassword\nuserPassword: carol-pw-2\n")
	if code, _ := signIn("carol-pw-2"); code != http.StatusOK {
		t.Errorf("sign-in with the changed password = %d, want 200 at once", code)
	}
	if code, _ := signIn("carol-pw-1"); code != http.StatusUnauthorized {
		t.Errorf("sign-in with the old password = %d, want 401 at once", code)
	}
	s.Stop()
	if code, body := signIn("carol-pw-2"); code != http.StatusServiceUnavailable || !strings.Contains(body, "the directory does not answer") {
		t.Errorf("sign-in with the directory down = %d, want 503 saying the directory does not answer", code)
	}
}
