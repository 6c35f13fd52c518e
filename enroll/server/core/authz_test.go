package core

import (
	"context"
	"strings"
	"testing"

	"github.com/totpbox/totpbox/enroll/server/appliance"
)

// TestOperationsByRole calls the core's operations as each role and
// checks that each is refused with a 403 naming the role it needs, or
// passes the role check.
func TestOperationsByRole(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	staff := f.user("staff")
	boss, err := f.core.CreateUser(ctx, System, NewUser{Username: "boss", Admin: true})
	if err != nil {
		t.Fatal(err)
	}
	type call func(a Actor) error
	ops := map[string]call{
		"start registration": func(a Actor) error {
			_, _, err := f.core.StartRegistration(ctx, a, staff, "Phone "+string(a.Role), "")
			return err
		},
		"start registration for an admin": func(a Actor) error {
			_, _, err := f.core.StartRegistration(ctx, a, boss, "Phone "+string(a.Role), "")
			return err
		},
		"unlock": func(a Actor) error { return f.core.UnlockDevice(ctx, a, staff, 999) },
		"delete": func(a Actor) error { return f.core.DeleteDevice(ctx, a, staff, 999) },
		"create user": func(a Actor) error {
			_, err := f.core.CreateUser(ctx, a, NewUser{Username: "new-" + string(a.Role)})
			return err
		},
		"disable user": func(a Actor) error { return f.core.SetDisabled(ctx, a, staff, false) },
		"verify":       func(a Actor) error { _, err := f.core.Verify(ctx, a, "staff", "123456", "192.0.2.9"); return err },
		"create webhook": func(a Actor) error {
			_, _, err := f.core.CreateWebhook(ctx, a, "ftp://bad", nil)
			return err
		},
		"pair appliance": func(a Actor) error { _, err := f.core.PairAppliance(ctx, a, "AAAA-AAAA", "Kiosk"); return err },
		"set site": func(a Actor) error {
			_, err := f.core.SetApplianceSite(ctx, a, appliance.Info{ID: "x", Site: "store-12"}, "store-12")
			return err
		},
		"replace appliance": func(a Actor) error {
			_, err := f.core.ReplaceAppliance(ctx, a, appliance.Info{ID: "x", Name: "Old"}, appliance.Info{ID: "y", Name: "Spare"})
			return err
		},
	}
	// want lists, per role, the operations it may do; the rest must be
	// refused with a 403.
	want := map[Role][]string{
		RoleAdmin:    {"start registration", "start registration for an admin", "unlock", "delete", "create user", "disable user", "verify", "create webhook", "pair appliance", "set site", "replace appliance"},
		RoleHelpdesk: {"start registration", "unlock", "delete"},
		RoleAuditor:  nil,
		RoleVerify:   {"verify"},
		"":           nil,
	}
	needs := map[string]string{
		"start registration": "needs the admin or helpdesk role", "start registration for an admin": "needs the admin",
		"unlock": "needs the admin or helpdesk role", "delete": "needs the admin or helpdesk role",
		"create user": "needs the admin role", "disable user": "needs the admin role", "verify": "needs the admin or verify role",
		"create webhook": "needs the admin role", "pair appliance": "needs the admin role", "set site": "needs the admin role",
		"replace appliance": "needs the admin role",
	}
	for role, allowed := range want {
		a := Actor{Name: "pat", Role: role}
		for name, op := range ops {
			err := op(a)
			status, msg := Explain(err)
			refused := status == 403
			if ok := contains(allowed, name); ok == refused {
				t.Errorf("role %q, %s: status %d %q; want allowed %v", role, name, status, msg, ok)
				continue
			}
			if refused && !strings.Contains(msg, needs[name]) {
				t.Errorf("role %q, %s: refusal %q does not say %q", role, name, msg, needs[name])
			}
		}
	}

	_, _, err = f.core.StartRegistration(ctx, Actor{Name: "pat", Role: RoleHelpdesk}, boss, "Phone", "")
	if _, msg := Explain(err); msg != "working on an admin's MFA devices needs the admin role; you have the helpdesk role" {
		t.Errorf("helpdesk on an admin's devices: %q", msg)
	}

	// Users work on their own devices and check their own codes without
	// a role.
	self := Actor{Name: "staff"}
	if _, _, err := f.core.StartRegistration(ctx, self, staff, "Own phone", ""); err != nil {
		t.Errorf("a user starting their own registration: %v", err)
	}
	if _, err := f.core.Verify(ctx, self, "staff", "123456", "192.0.2.9"); err != nil {
		t.Errorf("a user checking their own code: %v", err)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// TestAllowSite: an actor with sites reaches only their sites'
// appliances, one without reaches all.
func TestAllowSite(t *testing.T) {
	apps := []appliance.Info{{ID: "a", Site: "store-12"}, {ID: "b", Site: "store-14"}, {ID: "c"}}
	for _, tc := range []struct {
		a    Actor
		want string
	}{
		{Actor{Role: RoleHelpdesk}, "abc"},
		{Actor{Role: RoleHelpdesk, Sites: []string{"store-12"}}, "a"},
		{Actor{Role: RoleAuditor, Sites: []string{"store-12", "store-14"}}, "ab"},
		{Actor{Role: RoleVerify}, ""},
		{Actor{}, ""},
	} {
		var got string
		for _, app := range VisibleAppliances(tc.a, apps) {
			got += app.ID
		}
		if got != tc.want {
			t.Errorf("VisibleAppliances(%+v) = %q, want %q", tc.a, got, tc.want)
		}
	}
	err := AllowSite(Actor{Role: RoleHelpdesk, Sites: []string{"store-12"}}, "store-14")
	if status, msg := Explain(err); status != 403 || msg != "this appliance belongs to site store-14; you may use only the appliances of store-12" {
		t.Errorf("AllowSite = %d %q", status, msg)
	}
}
