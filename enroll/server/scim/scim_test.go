package scim_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/totpbox/totpbox/enroll/server/api"
	"github.com/totpbox/totpbox/enroll/server/appliance"
	"github.com/totpbox/totpbox/enroll/server/core"
	"github.com/totpbox/totpbox/enroll/server/scim"
	"github.com/totpbox/totpbox/enroll/store"
	"github.com/totpbox/totpbox/enroll/store/storetest"
	"github.com/totpbox/totpbox/internal/testkit"
)

// rig is a SCIM service over a fresh SQLite store and a real core.
type rig struct {
	t     testing.TB
	st    store.Store
	core  *core.Core
	h     http.Handler
	token string
}

func newRig(t testing.TB, st store.Store, users, admins string) *rig {
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
	svc, err := scim.New(scim.Config{Core: c, Store: st, Logger: testkit.Quiet(), UsersGroup: users, AdminsGroup: admins})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	svc.Register(mux)
	tok, err := api.CreateScopedToken(context.Background(), st, "idp", "scim")
	if err != nil {
		t.Fatal(err)
	}
	return &rig{t: t, st: st, core: c, h: mux, token: tok}
}

// do sends a request with the rig's token and returns the status and the
// decoded body (nil when empty).
func (r *rig) do(method, path, body string) (int, map[string]any) {
	r.t.Helper()
	return r.doAs(r.token, method, path, body)
}

func (r *rig) doAs(token, method, path, body string) (int, map[string]any) {
	r.t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/scim+json")
	}
	rec := httptest.NewRecorder()
	r.h.ServeHTTP(rec, req)
	var m map[string]any
	if rec.Body.Len() > 0 && strings.HasPrefix(rec.Header().Get("Content-Type"), "application/scim+json") {
		if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
			r.t.Fatalf("%s %s: answer is not JSON: %q", method, path, rec.Body.String())
		}
	}
	return rec.Code, m
}

// must is do that fails unless the status is want.
func (r *rig) must(want int, method, path, body string) map[string]any {
	r.t.Helper()
	status, m := r.do(method, path, body)
	if status != want {
		r.t.Fatalf("%s %s = %d %v, want %d", method, path, status, m, want)
	}
	return m
}

// user returns the store's user named name.
func (r *rig) user(name string) store.User {
	r.t.Helper()
	u, err := r.st.UserByName(context.Background(), name)
	if err != nil {
		r.t.Fatalf("UserByName(%s): %v", name, err)
	}
	return u
}

// create provisions a user and returns its SCIM id.
func (r *rig) create(userName string) string {
	r.t.Helper()
	m := r.must(201, "POST", "/scim/v2/Users", fmt.Sprintf(`{"schemas":["%s"],"userName":%q,"displayName":"U %s","active":true}`, scim.UserSchema, userName, userName))
	return m["id"].(string)
}

// wantError checks a SCIM error answer.
func wantError(t testing.TB, what string, status int, m map[string]any, wantStatus int, wantType string) {
	t.Helper()
	if status != wantStatus {
		t.Errorf("%s = %d %v, want %d", what, status, m, wantStatus)
		return
	}
	schemas, _ := m["schemas"].([]any)
	if len(schemas) != 1 || schemas[0] != scim.ErrorSchema || m["status"] != fmt.Sprint(wantStatus) || m["detail"] == "" {
		t.Errorf("%s: body %v is not a SCIM error with status %q", what, m, fmt.Sprint(wantStatus))
	}
	if got, _ := m["scimType"].(string); got != wantType {
		t.Errorf("%s: scimType %q, want %q (detail %v)", what, got, wantType, m["detail"])
	}
}

func TestAuth(t *testing.T) {
	r := newRig(t, storetest.OpenSQLite(t), "", "")
	admin, err := api.CreateToken(t.Context(), r.st, "admin")
	if err != nil {
		t.Fatal(err)
	}
	status, m := r.doAs("", "GET", "/scim/v2/Users", "")
	wantError(t, "no token", status, m, 401, "")
	status, m = r.doAs("tbx_nonsense", "GET", "/scim/v2/Users", "")
	wantError(t, "unknown token", status, m, 401, "")
	if status, _ := r.doAs(admin, "GET", "/scim/v2/Users", ""); status != 403 {
		t.Errorf("admin API token at /scim/v2 = %d, want 403", status)
	}
	r.must(200, "GET", "/scim/v2/ServiceProviderConfig", "")
	if err := api.RevokeToken(t.Context(), r.st, "idp"); err != nil {
		t.Fatal(err)
	}
	status, m = r.do("GET", "/scim/v2/Users", "")
	wantError(t, "revoked token", status, m, 401, "")
}

func TestDiscovery(t *testing.T) {
	r := newRig(t, storetest.OpenSQLite(t), "", "")
	spc := r.must(200, "GET", "/scim/v2/ServiceProviderConfig", "")
	if p, _ := spc["patch"].(map[string]any); p["supported"] != true {
		t.Errorf("ServiceProviderConfig patch = %v, want supported", spc["patch"])
	}
	rt := r.must(200, "GET", "/scim/v2/ResourceTypes", "")
	if rt["totalResults"] != 2.0 {
		t.Errorf("ResourceTypes totalResults = %v, want 2", rt["totalResults"])
	}
	r.must(200, "GET", "/scim/v2/ResourceTypes/User", "")
	sc := r.must(200, "GET", "/scim/v2/Schemas", "")
	if sc["totalResults"] != 2.0 {
		t.Errorf("Schemas totalResults = %v, want 2", sc["totalResults"])
	}
	r.must(200, "GET", "/scim/v2/Schemas/"+scim.UserSchema, "")
	status, m := r.do("GET", "/scim/v2/Schemas/urn:nope", "")
	wantError(t, "unknown schema", status, m, 404, "")
}

func TestUserLifecycle(t *testing.T) {
	r := newRig(t, storetest.OpenSQLite(t), "", "")
	ctx := t.Context()
	m := r.must(201, "POST", "/scim/v2/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],
		"userName":"Alice@Example.com","externalId":"e-alice","name":{"givenName":"Alice","familyName":"Liddell"},
		"emails":[{"value":"home@example.net","type":"home"},{"value":"alice@example.com","type":"work"}],"active":true}`)
	id, _ := m["id"].(string)
	if id == "" || m["userName"] != "alice@example.com" || m["displayName"] != "Alice Liddell" || m["active"] != true || m["externalId"] != "e-alice" {
		t.Fatalf("POST answer = %v", m)
	}
	u := r.user("alice@example.com")
	if u.Email != "alice@example.com" || u.Disabled || u.PasswordHash != "" {
		t.Errorf("created user = %+v, want the work email, enabled, no password", u)
	}
	if l, _ := r.core.UserLink(ctx, u); l.Source != "scim" {
		t.Errorf("UserLink source = %q, want scim", l.Source)
	}
	got := r.must(200, "GET", "/scim/v2/Users/"+id, "")
	if got["id"] != id || got["meta"].(map[string]any)["location"] != "http://example.com/scim/v2/Users/"+id {
		t.Errorf("GET = %v", got)
	}
	for _, f := range []string{`userName eq "ALICE@example.com"`, `externalId eq "e-alice"`} {
		l := r.must(200, "GET", "/scim/v2/Users?filter="+strings.ReplaceAll(f, " ", "%20"), "")
		if l["totalResults"] != 1.0 || l["Resources"].([]any)[0].(map[string]any)["id"] != id {
			t.Errorf("filter %s = %v", f, l)
		}
	}
	if l := r.must(200, "GET", "/scim/v2/Users?filter=externalId%20eq%20%22E-ALICE%22", ""); l["totalResults"] != 0.0 {
		t.Errorf("externalId is case-exact, got %v", l)
	}

	r.must(200, "PUT", "/scim/v2/Users/"+id, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"alice@example.com",
		"displayName":"Alice L.","emails":[{"value":"a@example.com","primary":true}],"active":true}`)
	if u := r.user("alice@example.com"); u.DisplayName != "Alice L." || u.Email != "a@example.com" {
		t.Errorf("after PUT user = %+v", u)
	}
	r.must(200, "PATCH", "/scim/v2/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"active","value":false}]}`)
	if u := r.user("alice@example.com"); !u.Disabled {
		t.Errorf("after PATCH active false: user enabled")
	}
	m = r.must(200, "PATCH", "/scim/v2/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"active","value":true}]}`)
	if u := r.user("alice@example.com"); u.Disabled || m["active"] != true {
		t.Errorf("after PATCH active true: user %+v, answer %v", u, m)
	}

	r.must(204, "DELETE", "/scim/v2/Users/"+id, "")
	status, em := r.do("GET", "/scim/v2/Users/"+id, "")
	wantError(t, "GET after DELETE", status, em, 404, "")
	if u := r.user("alice@example.com"); !u.Disabled {
		t.Errorf("after DELETE: user enabled, want disabled and kept")
	}
	if l := r.must(200, "GET", "/scim/v2/Users", ""); l["totalResults"] != 0.0 {
		t.Errorf("list after DELETE = %v", l)
	}
	// Provisioned again: the same resource comes back, enabled.
	m = r.must(201, "POST", "/scim/v2/Users", `{"userName":"alice@example.com","active":true}`)
	if m["id"] != id {
		t.Errorf("POST after DELETE id = %v, want %s again", m["id"], id)
	}
	if u := r.user("alice@example.com"); u.Disabled {
		t.Errorf("provisioned again: user still disabled")
	}
}

// TestAdminDisableKept: a user an admin disabled stays disabled when the
// client says active.
func TestAdminDisableKept(t *testing.T) {
	r := newRig(t, storetest.OpenSQLite(t), "", "")
	id := r.create("bob")
	u := r.user("bob")
	if err := r.core.SetDisabled(t.Context(), core.Actor{Name: "admin", Role: core.RoleAdmin}, u, true); err != nil {
		t.Fatal(err)
	}
	r.must(200, "PATCH", "/scim/v2/Users/"+id, `{"Operations":[{"op":"replace","value":{"displayName":"Bob B"}}]}`)
	if u := r.user("bob"); !u.Disabled || u.DisplayName != "Bob B" {
		t.Errorf("user = %+v, want disabled by the admin still, renamed", u)
	}
}

func TestErrors(t *testing.T) {
	r := newRig(t, storetest.OpenSQLite(t), "", "")
	id := r.create("carol")
	r.create("dave")
	big := `{"userName":"x","displayName":"` + strings.Repeat("a", scim.MaxBody) + `"}`
	patch := func(ops string) string {
		return `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":` + ops + `}`
	}
	for _, c := range []struct {
		name, method, path, body string
		status                   int
		scimType                 string
	}{
		{"filter without value", "GET", "/scim/v2/Users?filter=userName%20eq", "", 400, "invalidFilter"},
		{"filter unclosed string", "GET", "/scim/v2/Users?filter=userName%20eq%20%22bob", "", 400, "invalidFilter"},
		{"filter unknown operator", "GET", "/scim/v2/Users?filter=userName%20like%20%22bob%22", "", 400, "invalidFilter"},
		{"filter unsupported operator", "GET", "/scim/v2/Users?filter=userName%20sw%20%22b%22", "", 400, "invalidFilter"},
		{"filter on another attribute", "GET", "/scim/v2/Users?filter=title%20eq%20%22x%22", "", 400, "invalidFilter"},
		{"filter with or", "GET", "/scim/v2/Users?filter=userName%20eq%20%22a%22%20or%20userName%20eq%20%22b%22", "", 400, "invalidFilter"},
		{"filter grouping", "GET", "/scim/v2/Users?filter=(userName%20eq%20%22a%22)", "", 400, "invalidFilter"},
		{"filter bare word value", "GET", "/scim/v2/Users?filter=userName%20eq%20bob", "", 400, "invalidFilter"},
		{"bad count", "GET", "/scim/v2/Users?count=ten", "", 400, "invalidValue"},
		{"unknown attribute", "POST", "/scim/v2/Users", `{"userName":"erin","shoeSize":44}`, 400, "invalidSyntax"},
		{"unknown attribute under the schema's URN", "POST", "/scim/v2/Users", `{"userName":"erin","urn:ietf:params:scim:schemas:core:2.0:User:shoeSize":44}`, 400, "invalidSyntax"},
		{"a filter as a key", "POST", "/scim/v2/Users", `{"userName":"erin","emails[type eq \"work\"].value":"e@example.com"}`, 400, "invalidSyntax"},
		{"unknown extension", "POST", "/scim/v2/Users", `{"userName":"erin","urn:example:custom:2.0:User":{"x":1}}`, 400, "invalidSyntax"},
		{"no userName", "POST", "/scim/v2/Users", `{"displayName":"Erin"}`, 400, "invalidValue"},
		{"userName not a string", "POST", "/scim/v2/Users", `{"userName":7}`, 400, "invalidValue"},
		{"userName our rules refuse", "POST", "/scim/v2/Users", `{"userName":"erin smith"}`, 400, "invalidValue"},
		{"active not boolean", "POST", "/scim/v2/Users", `{"userName":"erin","active":"maybe"}`, 400, "invalidValue"},
		{"not JSON", "POST", "/scim/v2/Users", `{"userName":`, 400, "invalidSyntax"},
		{"trailing data", "POST", "/scim/v2/Users", `{"userName":"erin"} {}`, 400, "invalidSyntax"},
		{"body over 64 KiB", "POST", "/scim/v2/Users", big, 413, ""},
		{"duplicate userName", "POST", "/scim/v2/Users", `{"userName":"CAROL"}`, 409, "uniqueness"},
		{"rename onto another", "PUT", "/scim/v2/Users/" + id, `{"userName":"dave"}`, 409, "uniqueness"},
		{"unknown id GET", "GET", "/scim/v2/Users/nope", "", 404, ""},
		{"unknown id PUT", "PUT", "/scim/v2/Users/nope", `{"userName":"x"}`, 404, ""},
		{"unknown id PATCH", "PATCH", "/scim/v2/Users/nope", patch(`[{"op":"replace","path":"active","value":false}]`), 404, ""},
		{"unknown id DELETE", "DELETE", "/scim/v2/Users/nope", "", 404, ""},
		{"unknown group", "GET", "/scim/v2/Groups/nope", "", 404, ""},
		{"unknown endpoint", "GET", "/scim/v2/Bulk", "", 404, ""},
		{"patch unknown path", "PATCH", "/scim/v2/Users/" + id, patch(`[{"op":"replace","path":"shoeSize","value":44}]`), 400, "invalidPath"},
		{"patch unknown path in value", "PATCH", "/scim/v2/Users/" + id, patch(`[{"op":"replace","value":{"shoeSize":44}}]`), 400, "invalidPath"},
		{"patch filter on single-valued", "PATCH", "/scim/v2/Users/" + id, patch(`[{"op":"replace","path":"userName[type eq \"x\"]","value":"y"}]`), 400, "invalidPath"},
		{"patch bad value filter", "PATCH", "/scim/v2/Users/" + id, patch(`[{"op":"replace","path":"emails[type eq].value","value":"y"}]`), 400, "invalidPath"},
		{"patch unknown op", "PATCH", "/scim/v2/Users/" + id, patch(`[{"op":"move","path":"active","value":false}]`), 400, "invalidSyntax"},
		{"patch remove without path", "PATCH", "/scim/v2/Users/" + id, patch(`[{"op":"remove"}]`), 400, "noTarget"},
		{"patch no operations", "PATCH", "/scim/v2/Users/" + id, patch(`[]`), 400, "invalidSyntax"},
		{"patch active not boolean", "PATCH", "/scim/v2/Users/" + id, patch(`[{"op":"replace","path":"active","value":"Nope"}]`), 400, "invalidValue"},
		{"patch removes userName", "PATCH", "/scim/v2/Users/" + id, patch(`[{"op":"remove","path":"userName"}]`), 400, "invalidValue"},
		{"group member unknown", "POST", "/scim/v2/Groups", `{"displayName":"g","members":[{"value":"nope"}]}`, 400, "invalidValue"},
		{"group no name", "POST", "/scim/v2/Groups", `{"members":[]}`, 400, "invalidValue"},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, m := r.do(c.method, c.path, c.body)
			wantError(t, c.method+" "+c.path, status, m, c.status, c.scimType)
		})
	}
	if u := r.user("carol"); u.Disabled || u.Username != "carol" {
		t.Errorf("after the refused requests carol = %+v, want unchanged", u)
	}
}

// TestAttributesAsPaths: a body may name attributes by their full URN or
// a sub-attribute path, in any case.
func TestAttributesAsPaths(t *testing.T) {
	r := newRig(t, storetest.OpenSQLite(t), "", "")
	m := r.must(201, "POST", "/scim/v2/Users", `{"urn:ietf:params:scim:schemas:core:2.0:User:userName":"frank",
		"name.givenName":"Frank","NAME.familyName":"Example","ACTIVE":"true","DisplayName":"Frank E"}`)
	su, err := r.st.SCIMUserByID(t.Context(), m["id"].(string))
	if err != nil || su.User.Username != "frank" || su.GivenName != "Frank" || su.FamilyName != "Example" || su.User.DisplayName != "Frank E" || !su.Active {
		t.Fatalf("user = %+v, %v", su, err)
	}
}

// FuzzListFilter: any filter gets 200 or a SCIM 400, never a 500.
func FuzzListFilter(f *testing.F) {
	for _, s := range []string{`userName eq "a"`, `externalId eq "x" and userName eq "y"`, `userName eq`, `(a eq "b")`,
		`userName eq "\"`, `emails[type eq "work"]`, `userName pr`, `a eq 1e999`, `userName eq "` + "\u0000" + `"`} {
		f.Add(s)
	}
	r := newRig(f, storetest.OpenSQLite(f), "", "")
	f.Fuzz(func(t *testing.T, filter string) {
		r.t = t
		status, m := r.do("GET", "/scim/v2/Users?filter="+url.QueryEscape(filter), "")
		if status != 200 && !(status == 400 && m["scimType"] == "invalidFilter") {
			t.Fatalf("filter %q = %d %v, want 200 or 400 invalidFilter", filter, status, m)
		}
	})
}

func TestWrongMediaType(t *testing.T) {
	r := newRig(t, storetest.OpenSQLite(t), "", "")
	req := httptest.NewRequest("POST", "/scim/v2/Users", strings.NewReader(`userName=x`))
	req.Header.Set("Authorization", "Bearer "+r.token)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	r.h.ServeHTTP(rec, req)
	var m map[string]any
	json.Unmarshal(rec.Body.Bytes(), &m)
	wantError(t, "form body", rec.Code, m, 415, "")
}

// TestListPaging pages through 10 000 provisioned users, seeded in one
// transaction each for users and their SCIM rows.
func TestListPaging(t *testing.T) {
	st := storetest.OpenSQLite(t)
	r := newRig(t, st, "", "")
	const n = 10000
	users := make([]store.User, n)
	for i := range users {
		users[i] = store.User{Username: fmt.Sprintf("user%05d", i), DisplayName: fmt.Sprintf("User %d", i)}
	}
	if err := st.(store.BulkCreator).CreateUsersDevices(t.Context(), users, make([][]store.Device, n), nil); err != nil {
		t.Fatal(err)
	}
	rows := make([]store.SCIMUser, n)
	for i, u := range users {
		rows[i] = store.SCIMUser{UserID: u.ID, ID: fmt.Sprintf("id-%05d", i), Active: true}
	}
	if err := st.PutSCIMUsers(t.Context(), rows); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for start := 1; ; {
		l := r.must(200, "GET", fmt.Sprintf("/scim/v2/Users?startIndex=%d&count=%d", start, scim.MaxPage), "")
		if l["totalResults"] != float64(n) || l["startIndex"] != float64(start) {
			t.Fatalf("page at %d: totalResults %v startIndex %v", start, l["totalResults"], l["startIndex"])
		}
		res := l["Resources"].([]any)
		if l["itemsPerPage"] != float64(len(res)) {
			t.Fatalf("itemsPerPage %v, %d resources", l["itemsPerPage"], len(res))
		}
		if len(res) == 0 {
			break
		}
		for _, x := range res {
			id := x.(map[string]any)["id"].(string)
			if seen[id] {
				t.Fatalf("id %s on two pages", id)
			}
			seen[id] = true
		}
		start += len(res)
	}
	if len(seen) != n {
		t.Fatalf("paged through %d users, want %d", len(seen), n)
	}
	for _, c := range []struct {
		q     string
		items int
		first string
	}{
		{"", scim.DefaultPage, "id-00000"},
		{"?count=5000", scim.MaxPage, "id-00000"},
		{"?startIndex=9999&count=10", 2, "id-09998"},
		{"?startIndex=0&count=1", 1, "id-00000"},
		{"?startIndex=20000", 0, ""},
		{"?count=0", 0, ""},
		{"?count=-3", 0, ""},
	} {
		l := r.must(200, "GET", "/scim/v2/Users"+c.q, "")
		res := l["Resources"].([]any)
		if len(res) != c.items || l["totalResults"] != float64(n) {
			t.Errorf("%s: %d resources of %v, want %d of %d", c.q, len(res), l["totalResults"], c.items, n)
			continue
		}
		if c.first != "" && res[0].(map[string]any)["id"] != c.first {
			t.Errorf("%s: first %v, want %s", c.q, res[0].(map[string]any)["id"], c.first)
		}
	}
}
