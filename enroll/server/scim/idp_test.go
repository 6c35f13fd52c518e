package scim_test

import (
	"strings"
	"testing"

	"github.com/totpbox/totpbox/enroll/server/core"

	"github.com/totpbox/totpbox/enroll/store/storetest"
)

// TestIdentityProviderRequests replays the request bodies Entra ID and
// Okta send, as their documentation publishes them (Entra: "Tutorial:
// Develop and plan provisioning for a SCIM endpoint", its request
// examples; Okta: "SCIM 2.0 reference" of the Okta developer docs), with
// names changed. Each case starts from one provisioned user, {id}, of
// userName "test_user@contoso.com", display name "Test User", email
// "test_user@contoso.com" (work), externalId "0a21f0f2", active.
func TestIdentityProviderRequests(t *testing.T) {
	const create = `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
		"externalId":"0a21f0f2","userName":"Test_User@contoso.com","active":true,"displayName":"Test User",
		"emails":[{"primary":true,"type":"work","value":"Test_User@contoso.com"}],
		"meta":{"resourceType":"User"},"name":{"formatted":"givenName familyName","familyName":"familyName","givenName":"givenName"},
		"roles":[]}`
	patch := func(ops string) string {
		return `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":` + ops + `}`
	}
	type want struct {
		userName, display, email, given, family, externalID string
		disabled                                            bool
	}
	base := want{userName: "test_user@contoso.com", display: "Test User", email: "Test_User@contoso.com",
		given: "givenName", family: "familyName", externalID: "0a21f0f2"}
	with := func(f func(w *want)) want {
		w := base
		f(&w)
		return w
	}
	for _, c := range []struct {
		name, method, body string
		status             int
		want               want
	}{
		// Entra ID.
		{"entra disable user", "PATCH", patch(`[{"op":"Replace","path":"active","value":"False"}]`), 200,
			with(func(w *want) { w.disabled = true })},
		{"entra disable user, value object", "PATCH", patch(`[{"op":"replace","value":{"active":false}}]`), 200,
			with(func(w *want) { w.disabled = true })},
		{"entra disable user, value object with a string", "PATCH", patch(`[{"op":"Replace","value":{"active":"False"}}]`), 200,
			with(func(w *want) { w.disabled = true })},
		{"entra enable user", "PATCH", patch(`[{"op":"Replace","path":"active","value":"True"}]`), 200, base},
		{"entra update user, multi-valued attributes", "PATCH", patch(`[
			{"op":"Replace","path":"emails[type eq \"work\"].value","value":"updatedEmail@microsoft.com"},
			{"op":"Replace","path":"name.familyName","value":"updatedFamilyName"}]`), 200,
			with(func(w *want) { w.email, w.family = "updatedEmail@microsoft.com", "updatedFamilyName" })},
		{"entra update user, single-valued attributes", "PATCH", patch(`[{"op":"Replace","path":"userName","value":"5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com"}]`), 200,
			with(func(w *want) { w.userName = "5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com" })},
		{"entra add of a work email it has not yet", "PATCH", patch(`[{"op":"Add","path":"emails[type eq \"work\"].value","value":"new@contoso.com"}]`), 200,
			with(func(w *want) { w.email = "new@contoso.com" })},
		{"entra path-less replace of several attributes", "PATCH", patch(`[{"op":"Replace","value":{"displayName":"Updated Name","name.givenName":"Upd",
			"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber":"42","title":"tester"}}]`), 200,
			with(func(w *want) { w.display, w.given = "Updated Name", "Upd" })},
		{"entra enterprise extension as an object", "PATCH", patch(`[{"op":"Add","value":{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"Kiosks"}}}]`), 200, base},
		{"entra manager path", "PATCH", patch(`[{"op":"Add","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager","value":"2819c223-7f76-453a-919d-413861904646"}]`), 200, base},
		{"entra remove of an attribute", "PATCH", patch(`[{"op":"Remove","path":"externalId"}]`), 200,
			with(func(w *want) { w.externalID = "" })},
		{"entra disable and rename at once", "PATCH", patch(`[{"op":"Replace","path":"active","value":"False"},{"op":"Replace","path":"displayName","value":"Gone"}]`), 200,
			with(func(w *want) { w.disabled, w.display = true, "Gone" })},

		// Okta.
		{"okta deactivate", "PATCH", patch(`[{"op":"replace","value":{"active":false}}]`), 200,
			with(func(w *want) { w.disabled = true })},
		{"okta update with PUT of the whole user", "PUT", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],
			"id":"{id}","userName":"test_user@contoso.com","name":{"givenName":"Another","middleName":"","familyName":"User"},
			"emails":[{"primary":true,"value":"test.user@okta.local","type":"work","display":"test.user@okta.local"}],
			"active":true,"groups":[],"meta":{"resourceType":"User"},"externalId":"0a21f0f2","locale":"en-US","password":"1mz050nq"}`, 200,
			with(func(w *want) {
				w.display, w.given, w.family, w.email = "Another User", "Another", "User", "test.user@okta.local"
			})},
		{"okta deactivate with PUT", "PUT", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"id":"{id}",
			"userName":"test_user@contoso.com","name":{"givenName":"givenName","familyName":"familyName"},"displayName":"Test User",
			"emails":[{"primary":true,"value":"Test_User@contoso.com","type":"work"}],"active":false,"externalId":"0a21f0f2"}`, 200,
			with(func(w *want) { w.disabled = true })},
		{"okta PUT without active keeps the user active", "PUT", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],
			"userName":"test_user@contoso.com","displayName":"Test User","name":{"givenName":"givenName","familyName":"familyName"},
			"emails":[{"primary":true,"value":"Test_User@contoso.com","type":"work"}],"externalId":"0a21f0f2"}`, 200, base},
		{"okta profile PATCH", "PATCH", patch(`[{"op":"replace","value":{"name":{"givenName":"Ann","familyName":"Other"}}}]`), 200,
			with(func(w *want) { w.given, w.family = "Ann", "Other" })},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := newRig(t, storetest.OpenSQLite(t), "", "")
			id := r.must(201, "POST", "/scim/v2/Users", create)["id"].(string)
			status, m := r.do(c.method, "/scim/v2/Users/"+id, strings.ReplaceAll(c.body, "{id}", id))
			if status != c.status {
				t.Fatalf("%s = %d %v, want %d", c.method, status, m, c.status)
			}
			su, err := r.st.SCIMUserByID(t.Context(), id)
			if err != nil {
				t.Fatal(err)
			}
			u := su.User
			got := want{userName: u.Username, display: u.DisplayName, email: u.Email, given: su.GivenName, family: su.FamilyName,
				externalID: su.ExternalID, disabled: u.Disabled}
			if got != c.want {
				t.Errorf("user = %+v\nwant   %+v", got, c.want)
			}
			if m["active"] != !c.want.disabled || m["userName"] != c.want.userName {
				t.Errorf("answer active %v userName %v, want %v %s", m["active"], m["userName"], !c.want.disabled, c.want.userName)
			}
		})
	}
}

// TestIdentityProviderGroups replays the group requests of Entra ID and
// Okta against the mapped groups: membership of users_group grants use,
// of admins_group admin; Entra's lookup with excludedAttributes=members.
func TestIdentityProviderGroups(t *testing.T) {
	r := newRig(t, storetest.OpenSQLite(t), "Kiosk Users", "totpbox admins")
	alice, bob := r.create("alice"), r.create("bob")
	// A provisioned user outside the users group may not use totpbox.
	if !r.user("alice").Disabled || !r.user("bob").Disabled {
		t.Fatal("users outside users_group are enabled")
	}
	// Entra: create group, with no members.
	g := r.must(201, "POST", "/scim/v2/Groups", `{"externalId":"8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159","displayName":"Kiosk Users",
		"meta":{"resourceType":"Group"},"members":[],"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"]}`)
	gid := g["id"].(string)
	// Entra: update group, add members.
	r.must(204, "PATCH", "/scim/v2/Groups/"+gid, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
		"Operations":[{"name":"addMember","op":"Add","path":"members","value":[{"$ref":null,"value":"`+alice+`"},{"$ref":null,"value":"`+bob+`"}]}]}`)
	if r.user("alice").Disabled || r.user("bob").Disabled {
		t.Fatal("members of users_group are disabled")
	}
	// Entra: update group, remove members (a value list, not a filter).
	r.must(204, "PATCH", "/scim/v2/Groups/"+gid, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
		"Operations":[{"name":"removeMember","op":"Remove","path":"members","value":[{"$ref":null,"value":"`+bob+`"}]}]}`)
	if r.user("alice").Disabled || !r.user("bob").Disabled {
		t.Fatal("bob removed from users_group is not disabled, or alice is")
	}
	// Okta: remove a member through a filter, add one back.
	r.must(204, "PATCH", "/scim/v2/Groups/"+gid, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
		"Operations":[{"op":"remove","path":"members[value eq \"`+alice+`\"]"},{"op":"add","path":"members","value":[{"value":"`+bob+`","display":"bob"}]}]}`)
	if !r.user("alice").Disabled || r.user("bob").Disabled {
		t.Fatal("after Okta's remove and add: alice should be disabled, bob enabled")
	}
	// Entra: get group by displayName, members left out.
	l := r.must(200, "GET", "/scim/v2/Groups?excludedAttributes=members&filter=displayName%20eq%20%22Kiosk%20Users%22", "")
	res := l["Resources"].([]any)
	if l["totalResults"] != 1.0 || res[0].(map[string]any)["id"] != gid || res[0].(map[string]any)["members"] != nil {
		t.Errorf("group lookup = %v", l)
	}
	got := r.must(200, "GET", "/scim/v2/Groups/"+gid, "")
	if ms := got["members"].([]any); len(ms) != 1 || ms[0].(map[string]any)["value"] != bob {
		t.Errorf("members = %v, want bob alone", got["members"])
	}
	// The admins group makes admins; Okta renames a group with a
	// path-less replace that also carries its id.
	a := r.must(201, "POST", "/scim/v2/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Helpdesk","members":[{"value":"`+bob+`"}]}`)
	if r.user("bob").Admin {
		t.Fatal("bob admin through a group that is not admins_group")
	}
	r.must(204, "PATCH", "/scim/v2/Groups/"+a["id"].(string), `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
		"Operations":[{"op":"replace","value":{"id":"`+a["id"].(string)+`","displayName":"totpbox admins"}}]}`)
	if !r.user("bob").Admin {
		t.Fatal("bob is no admin after his group became admins_group")
	}
	if u := r.must(200, "GET", "/scim/v2/Users/"+bob, ""); len(u["groups"].([]any)) != 2 {
		t.Errorf("bob's groups = %v, want 2", u["groups"])
	}
	// Deleting the users group disables its members, but not the last
	// admin: 409 until another admin exists.
	status, m := r.do("DELETE", "/scim/v2/Groups/"+gid, "")
	wantError(t, "disabling the last admin", status, m, 409, "")
	if r.user("bob").Disabled {
		t.Fatal("the refused group DELETE disabled bob")
	}
	r.must(200, "GET", "/scim/v2/Groups/"+gid, "")
	if _, err := r.core.CreateUser(t.Context(), core.Actor{Name: "cli", Role: core.RoleAdmin}, core.NewUser{Username: "root", Password: "a long enough password 1", Admin: true}); err != nil {
		t.Fatal(err)
	}
	r.must(204, "DELETE", "/scim/v2/Groups/"+gid, "")
	if !r.user("bob").Disabled {
		t.Fatal("bob still enabled after the users group was deleted")
	}
	status, m = r.do("POST", "/scim/v2/Groups", `{"displayName":"TOTPBOX ADMINS"}`)
	wantError(t, "group of a taken name", status, m, 409, "uniqueness")
}
