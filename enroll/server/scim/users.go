package scim

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/totpbox/totpbox/enroll/server/core"
	"github.com/totpbox/totpbox/enroll/store"
)

// The schemas of the resources and messages this service speaks.
const (
	UserSchema         = "urn:ietf:params:scim:schemas:core:2.0:User"
	GroupSchema        = "urn:ietf:params:scim:schemas:core:2.0:Group"
	EnterpriseSchema   = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	ListResponseSchema = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
)

// userSchema knows every attribute of the core User schema and the
// enterprise extension; of these the service keeps userName, name
// (givenName, familyName), displayName, emails (one), active and
// externalId, and accepts the others without keeping them, so an
// identity provider's default attribute mappings work. Any other
// attribute is refused.
var userSchema = newSchema(UserSchema, []string{EnterpriseSchema}, []string{
	"schemas", "id", "externalId", "meta", "userName", "name", "displayName", "nickName", "profileUrl",
	"title", "userType", "preferredLanguage", "locale", "timezone", "active", "password", "emails",
	"phoneNumbers", "ims", "photos", "addresses", "groups", "entitlements", "roles", "x509Certificates",
}, "emails", "phoneNumbers", "ims", "photos", "addresses", "groups", "entitlements", "roles", "x509Certificates")

// normalize returns doc with canonical top-level names, or an
// invalidSyntax error naming an attribute sch does not know.
func (sch *schema) normalize(doc map[string]any) (map[string]any, error) {
	out := make(map[string]any, len(doc))
	for k, v := range doc {
		c, ok := sch.canonical(k)
		if !ok {
			// A path as a key: "urn:...:User:userName", "name.givenName".
			p, err := sch.parsePath(k)
			if err != nil || p.filter != nil {
				return nil, Errorf(http.StatusBadRequest, "invalidSyntax", "unknown attribute %q", k)
			}
			if err := sch.apply(out, "replace", p, v); err != nil {
				return nil, err
			}
			continue
		}
		out[c] = v
	}
	return out, nil
}

// userFields are the attributes of a SCIM user the service keeps.
type userFields struct {
	userName, externalID, displayName, givenName, familyName, email string
	active                                                          bool
}

func str(m map[string]any, k string) (string, error) {
	switch v := get(m, k).(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	default:
		return "", Errorf(http.StatusBadRequest, "invalidValue", "%s must be a string, not %s", k, fmtValue(v))
	}
}

// boolValue reads a boolean, also from the strings "True" and "False" in
// any case, as Entra ID sends them.
func boolValue(k string, v any) (bool, error) {
	switch x := v.(type) {
	case bool:
		return x, nil
	case string:
		if b, err := strconv.ParseBool(strings.ToLower(strings.TrimSpace(x))); err == nil {
			return b, nil
		}
	}
	return false, Errorf(http.StatusBadRequest, "invalidValue", "%s must be true or false, not %s", k, fmtValue(v))
}

// userFromDoc reads the kept attributes of a user resource.
func userFromDoc(doc map[string]any) (userFields, error) {
	var f userFields
	var err error
	if f.userName, err = str(doc, "userName"); err != nil {
		return f, err
	}
	if strings.TrimSpace(f.userName) == "" {
		return f, Errorf(http.StatusBadRequest, "invalidValue", "userName is required")
	}
	if f.externalID, err = str(doc, "externalId"); err != nil {
		return f, err
	}
	if f.displayName, err = str(doc, "displayName"); err != nil {
		return f, err
	}
	formatted := ""
	switch n := doc["name"].(type) {
	case nil:
	case map[string]any:
		if f.givenName, err = str(n, "givenName"); err != nil {
			return f, err
		}
		if f.familyName, err = str(n, "familyName"); err != nil {
			return f, err
		}
		if formatted, err = str(n, "formatted"); err != nil {
			return f, err
		}
	default:
		return f, Errorf(http.StatusBadRequest, "invalidValue", "name must be an object")
	}
	if f.displayName == "" {
		f.displayName = formatted
	}
	if f.displayName == "" {
		f.displayName = strings.TrimSpace(f.givenName + " " + f.familyName)
	}
	if f.email, err = pickEmail(doc["emails"]); err != nil {
		return f, err
	}
	f.active = true
	if v, ok := doc["active"]; ok && v != nil {
		if f.active, err = boolValue("active", v); err != nil {
			return f, err
		}
	}
	return f, nil
}

// pickEmail returns the primary email, else the work one, else the first.
func pickEmail(v any) (string, error) {
	var first, work, primary string
	for _, e := range asList(v) {
		m, ok := e.(map[string]any)
		if !ok {
			return "", Errorf(http.StatusBadRequest, "invalidValue", "emails must be a list of objects {value, type, primary}")
		}
		val, err := str(m, "value")
		if err != nil {
			return "", Errorf(http.StatusBadRequest, "invalidValue", "emails.value must be a string")
		}
		if val == "" {
			continue
		}
		if first == "" {
			first = val
		}
		if t, _ := str(m, "type"); strings.EqualFold(t, "work") && work == "" {
			work = val
		}
		if p := get(m, "primary"); p != nil {
			if b, err := boolValue("emails.primary", p); err != nil {
				return "", err
			} else if b && primary == "" {
				primary = val
			}
		}
	}
	for _, e := range []string{primary, work, first} {
		if e != "" {
			return e, nil
		}
	}
	return "", nil
}

// newID returns a random resource id, formatted as a UUID.
func newID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// userDoc is a user as SCIM shows it.
func (s *Service) userDoc(ctx context.Context, r *http.Request, su store.SCIMUser) (map[string]any, error) {
	u := su.User
	doc := map[string]any{
		"schemas":     []any{UserSchema},
		"id":          su.ID,
		"userName":    u.Username,
		"displayName": u.DisplayName,
		"active":      su.Active && !u.Disabled,
		"name":        map[string]any{"formatted": u.DisplayName, "givenName": su.GivenName, "familyName": su.FamilyName},
		"meta": map[string]any{
			"resourceType": "User",
			"created":      su.Created.UTC().Format(time.RFC3339),
			"lastModified": su.Updated.UTC().Format(time.RFC3339),
			"location":     s.base(r) + "/Users/" + su.ID,
		},
	}
	if su.ExternalID != "" {
		doc["externalId"] = su.ExternalID
	}
	if u.Email != "" {
		doc["emails"] = []any{map[string]any{"value": u.Email, "type": "work", "primary": true}}
	}
	gs, err := s.store.SCIMGroupsOf(ctx, su.UserID)
	if err != nil {
		return nil, err
	}
	if len(gs) > 0 {
		var list []any
		for _, g := range gs {
			list = append(list, map[string]any{"value": g.ID, "display": g.DisplayName, "$ref": s.base(r) + "/Groups/" + g.ID})
		}
		doc["groups"] = list
	}
	return doc, nil
}

// lookupUser returns the user with SCIM id id, 404 when none or deleted.
func (s *Service) lookupUser(ctx context.Context, id string) (store.SCIMUser, error) {
	su, err := s.store.SCIMUserByID(ctx, id)
	if errors.Is(err, store.ErrNotFound) || err == nil && su.Deleted {
		return su, Errorf(http.StatusNotFound, "", "no user with id %q", id)
	}
	return su, err
}

// apply makes the user of su match f, and the access its groups give:
// the directory user is disabled when f is not active or, with a users
// group, when they are not in it; with an admins group, admin is
// membership of it.
func (s *Service) apply(ctx context.Context, a core.Actor, su store.SCIMUser, f userFields) (store.SCIMUser, error) {
	inUsers, inAdmins := false, false
	if su.UserID != 0 {
		gs, err := s.store.SCIMGroupsOf(ctx, su.UserID)
		if err != nil {
			return su, err
		}
		for _, g := range gs {
			inUsers = inUsers || strings.EqualFold(g.DisplayName, s.cfg.UsersGroup)
			inAdmins = inAdmins || strings.EqualFold(g.DisplayName, s.cfg.AdminsGroup)
		}
	}
	du := core.DirectoryUser{
		Source: SourceSCIM, ExternalID: su.ID, Username: f.userName, DisplayName: f.displayName, Email: f.email,
		Disabled: !f.active || s.cfg.UsersGroup != "" && !inUsers,
	}
	if s.cfg.AdminsGroup != "" {
		du.Admin = &inAdmins
	}
	_, u, err := s.core.ApplyDirectoryUser(ctx, a, du)
	if err != nil {
		return su, err
	}
	now := s.clock.Now().UTC()
	su.UserID, su.ExternalID, su.GivenName, su.FamilyName = u.ID, f.externalID, f.givenName, f.familyName
	su.Active, su.Deleted, su.Updated = f.active, false, now
	if su.Created.IsZero() {
		su.Created = now
	}
	if err := s.store.PutSCIMUser(ctx, su); err != nil {
		return su, err
	}
	su.User = u
	return su, nil
}

// fieldsOf returns the kept attributes of a stored user.
func fieldsOf(su store.SCIMUser) userFields {
	return userFields{userName: su.User.Username, externalID: su.ExternalID, displayName: su.User.DisplayName,
		givenName: su.GivenName, familyName: su.FamilyName, email: su.User.Email, active: su.Active}
}

func (s *Service) writeUser(w http.ResponseWriter, r *http.Request, status int, su store.SCIMUser) error {
	doc, err := s.userDoc(r.Context(), r, su)
	if err != nil {
		return err
	}
	if status == http.StatusCreated {
		w.Header().Set("Location", s.base(r)+"/Users/"+su.ID)
	}
	writeJSON(w, status, doc)
	return nil
}

func (s *Service) readUser(r *http.Request) (userFields, error) {
	body, err := readBody(r)
	if err != nil {
		return userFields{}, err
	}
	doc, err := userSchema.normalize(body)
	if err != nil {
		return userFields{}, err
	}
	return userFromDoc(doc)
}

func (s *Service) userCreate(w http.ResponseWriter, r *http.Request, a core.Actor) error {
	ctx := r.Context()
	f, err := s.readUser(r)
	if err != nil {
		return err
	}
	su := store.SCIMUser{ID: newID()}
	if name, err := core.CleanUsername(f.userName); err == nil {
		switch u, err := s.store.UserByName(ctx, name); {
		case err == nil:
			switch old, err := s.store.SCIMUserByUserID(ctx, u.ID); {
			case err == nil && !old.Deleted:
				return Errorf(http.StatusConflict, "uniqueness", "userName %q is taken by user %s", f.userName, old.ID)
			case err == nil:
				// Provisioned again after a DELETE: the same resource
				// comes back, with its MFA devices.
				su = old
			case !errors.Is(err, store.ErrNotFound):
				return err
			}
		case !errors.Is(err, store.ErrNotFound):
			return err
		}
	}
	su, err = s.apply(ctx, a, su, f)
	if err != nil {
		return err
	}
	return s.writeUser(w, r, http.StatusCreated, su)
}

func (s *Service) userGet(w http.ResponseWriter, r *http.Request, a core.Actor) error {
	su, err := s.lookupUser(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	return s.writeUser(w, r, http.StatusOK, su)
}

// page reads startIndex (1-based, default 1) and count (default 100, at
// most MaxPage) of a list request.
func page(r *http.Request) (start, count int, err error) {
	start, count = 1, DefaultPage
	q := r.URL.Query()
	if v := q.Get("startIndex"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return 0, 0, Errorf(http.StatusBadRequest, "invalidValue", "startIndex must be a number, not %q", v)
		}
		start = max(n, 1)
	}
	if v := q.Get("count"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return 0, 0, Errorf(http.StatusBadRequest, "invalidValue", "count must be a number, not %q", v)
		}
		count = min(max(n, 0), MaxPage)
	}
	return start, count, nil
}

// DefaultPage and MaxPage are a list's page size when count is absent,
// and its largest.
const (
	DefaultPage = 100
	MaxPage     = 1000
)

func listResponse(total, start int, items []any) map[string]any {
	if items == nil {
		items = []any{}
	}
	return map[string]any{"schemas": []any{ListResponseSchema}, "totalResults": total, "startIndex": start,
		"itemsPerPage": len(items), "Resources": items}
}

func (s *Service) userList(w http.ResponseWriter, r *http.Request, a core.Actor) error {
	ctx := r.Context()
	f, err := listFilter(r.URL.Query().Get("filter"), "userName", "externalId")
	if err != nil {
		return err
	}
	start, count, err := page(r)
	if err != nil {
		return err
	}
	us, total, err := s.store.SCIMUsers(ctx, store.SCIMUserQuery{UserName: f["userName"], ExternalID: f["externalId"], Offset: start - 1, Limit: count})
	if err != nil {
		return err
	}
	items := make([]any, 0, len(us))
	for _, su := range us {
		doc, err := s.userDoc(ctx, r, su)
		if err != nil {
			return err
		}
		items = append(items, doc)
	}
	writeJSON(w, http.StatusOK, listResponse(total, start, items))
	return nil
}

func (s *Service) userReplace(w http.ResponseWriter, r *http.Request, a core.Actor) error {
	su, err := s.lookupUser(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	f, err := s.readUser(r)
	if err != nil {
		return err
	}
	if su, err = s.apply(r.Context(), a, su, f); err != nil {
		return err
	}
	return s.writeUser(w, r, http.StatusOK, su)
}

func (s *Service) userPatch(w http.ResponseWriter, r *http.Request, a core.Actor) error {
	ctx := r.Context()
	su, err := s.lookupUser(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	p, err := readPatch(r)
	if err != nil {
		return err
	}
	doc, err := s.userDoc(ctx, r, su)
	if err != nil {
		return err
	}
	doc["active"] = su.Active
	if err := userSchema.applyPatch(doc, p.Operations); err != nil {
		return err
	}
	f, err := userFromDoc(doc)
	if err != nil {
		return err
	}
	if su, err = s.apply(ctx, a, su, f); err != nil {
		return err
	}
	return s.writeUser(w, r, http.StatusOK, su)
}

func (s *Service) userDelete(w http.ResponseWriter, r *http.Request, a core.Actor) error {
	ctx := r.Context()
	su, err := s.lookupUser(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	if _, err := s.core.DirectoryUserLeft(ctx, a, store.DirectoryLink{UserID: su.UserID, Source: SourceSCIM, ExternalID: su.ID}); err != nil {
		return err
	}
	su.Deleted, su.Updated = true, s.clock.Now().UTC()
	if err := s.store.PutSCIMUser(ctx, su); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
