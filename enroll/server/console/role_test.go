package console

import (
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/totpbox/totpbox/enroll/server/core"
	"github.com/totpbox/totpbox/enroll/store"
)

// TestActorRole: the session's role wins over the admin flag; without
// one the admin flag makes an admin; otherwise a plain user has no role.
func TestActorRole(t *testing.T) {
	for _, tc := range []struct {
		name      string
		sessRole  string
		sites     []string
		admin     bool
		wantRole  core.Role
		wantSites []string
	}{
		{"admin flag", "", nil, true, core.RoleAdmin, nil},
		{"plain user", "", nil, false, "", nil},
		{"helpdesk from the sign-in", "helpdesk", []string{"store-12"}, false, core.RoleHelpdesk, []string{"store-12"}},
		{"sign-in role over admin flag", "auditor", nil, true, core.RoleAuditor, nil},
		{"unknown stored role", "root", nil, true, "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := &auth{sess: store.Session{Role: tc.sessRole, Sites: tc.sites}, user: store.User{Username: "pat", Admin: tc.admin}}
			got := a.actor(httptest.NewRequest("GET", "/", nil))
			if got.Name != "pat" || got.Role != tc.wantRole || !slices.Equal(got.Sites, tc.wantSites) {
				t.Errorf("actor = %+v, want role %q sites %q", got, tc.wantRole, tc.wantSites)
			}
		})
	}
}
