package core

import "testing"

func TestParseRole(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Role
		wantErr string
	}{
		{"admin", RoleAdmin, ""},
		{"helpdesk", RoleHelpdesk, ""},
		{"auditor", RoleAuditor, ""},
		{"verify", RoleVerify, ""},
		{"Admin", "", `unknown role "Admin": want one of admin, helpdesk, auditor, verify`},
		{"", "", `unknown role "": want one of admin, helpdesk, auditor, verify`},
		{"root", "", `unknown role "root": want one of admin, helpdesk, auditor, verify`},
	} {
		got, err := ParseRole(tc.in)
		if tc.wantErr != "" {
			if err == nil || err.Error() != tc.wantErr {
				t.Errorf("ParseRole(%q) error = %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseRole(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}
