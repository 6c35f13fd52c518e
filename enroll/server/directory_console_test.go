package server

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/totpbox/totpbox/enroll/server/core"
)

// TestConsoleShowsWhereUsersComeFrom: a user's page says where they come
// from (local, the LDAP directory with their entry, SCIM), offers no
// password for a directory user and refuses one posted anyway (409, the
// hash untouched), and offers no Enable for a user the directory
// disabled, refusing the POST too.
func TestConsoleShowsWhereUsersComeFrom(t *testing.T) {
	h := newHarness(t, storeSQLite(t), nil)
	ctx := context.Background()
	h.mustCall(201, "POST", "/api/v1/users", map[string]any{"username": "max"})
	for _, du := range []core.DirectoryUser{
		{Source: core.SourceLDAP, ExternalID: "uid=lena,ou=people,dc=example,dc=org", Username: "lena"},
		{Source: core.SourceSCIM, ExternalID: "00u1sam", Username: "sam"},
		{Source: core.SourceLDAP, ExternalID: "uid=leo,ou=people,dc=example,dc=org", Username: "leo", Disabled: true},
	} {
		if _, _, err := h.srv.Core().ApplyDirectoryUser(ctx, core.System, du); err != nil {
			t.Fatal(err)
		}
	}
	admin := h.consoleAs("root", true, "", nil)
	for _, tc := range []struct {
		user          string
		shown, hidden []string
	}{
		{"max", []string{"Local: created here", "Set password", "Disable user"}, []string{"come from"}},
		{"lena", []string{"the LDAP directory", "uid=lena,ou=people,dc=example,dc=org", "Password checked by the LDAP directory", "come from the LDAP directory", "Disable user"}, []string{"Set password"}},
		{"sam", []string{"SCIM provisioning", "00u1sam", "signs in through the identity provider"}, []string{"Set password"}},
		{"leo", []string{"Disabled by the LDAP directory"}, []string{"Set password", "Enable user"}},
	} {
		status, page := admin("GET", "/users/"+tc.user, nil)
		if status != 200 {
			t.Fatalf("GET /users/%s = %d %s", tc.user, status, firstLine(page))
		}
		for _, s := range tc.shown {
			if !strings.Contains(page, s) {
				t.Errorf("/users/%s does not show %q", tc.user, s)
			}
		}
		for _, s := range tc.hidden {
			if strings.Contains(page, s) {
				t.Errorf("/users/%s shows %q", tc.user, s)
			}
		}
	}

	status, page := admin("POST", "/users/lena/password", url.Values{"password": {"a long enough password"}})
	if status != 409 || !strings.Contains(page, `"lena" comes from the LDAP directory, and their password is not kept here`) {
		t.Errorf("POST a directory user's password = %d %s", status, firstLine(page))
	}
	if u, err := h.st.UserByName(ctx, "lena"); err != nil || u.PasswordHash != "" {
		t.Errorf("lena's password hash %q, %v after a refused set", u.PasswordHash, err)
	}
	status, page = admin("POST", "/users/leo/enable", nil)
	if status != 409 || !strings.Contains(page, "the LDAP directory disabled them") {
		t.Errorf("POST enable of a user the directory disabled = %d %s", status, firstLine(page))
	}
	if u, _ := h.st.UserByName(ctx, "leo"); !u.Disabled {
		t.Error("leo was enabled against the directory")
	}
}
