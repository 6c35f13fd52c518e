package scim

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/totpbox/totpbox/enroll/server/core"
	"github.com/totpbox/totpbox/enroll/store"
)

// groupSchema is the core Group schema.
var groupSchema = newSchema(GroupSchema, nil, []string{"schemas", "id", "externalId", "meta", "displayName", "members"}, "members")

// groupDoc is a group as SCIM shows it; members are left out when the
// request asks (excludedAttributes=members, as Entra ID does).
func (s *Service) groupDoc(ctx context.Context, r *http.Request, g store.SCIMGroup, withMembers bool) (map[string]any, error) {
	doc := map[string]any{
		"schemas":     []any{GroupSchema},
		"id":          g.ID,
		"displayName": g.DisplayName,
		"meta": map[string]any{
			"resourceType": "Group",
			"created":      g.Created.UTC().Format(time.RFC3339),
			"lastModified": g.Updated.UTC().Format(time.RFC3339),
			"location":     s.base(r) + "/Groups/" + g.ID,
		},
	}
	if g.ExternalID != "" {
		doc["externalId"] = g.ExternalID
	}
	if withMembers {
		members := []any{}
		for _, id := range g.Members {
			su, err := s.store.SCIMUserByUserID(ctx, id)
			if err != nil {
				return nil, err
			}
			members = append(members, map[string]any{"value": su.ID, "display": su.User.Username, "$ref": s.base(r) + "/Users/" + su.ID})
		}
		doc["members"] = members
	}
	return doc, nil
}

func wantMembers(r *http.Request) bool {
	q := r.URL.Query()
	for _, a := range strings.Split(q.Get("excludedAttributes"), ",") {
		if strings.EqualFold(strings.TrimSpace(a), "members") {
			return false
		}
	}
	return true
}

// groupFromDoc reads a group resource: its names and its members' user
// ids.
func (s *Service) groupFromDoc(ctx context.Context, doc map[string]any) (store.SCIMGroup, error) {
	var g store.SCIMGroup
	var err error
	if g.DisplayName, err = str(doc, "displayName"); err != nil {
		return g, err
	}
	if strings.TrimSpace(g.DisplayName) == "" {
		return g, Errorf(http.StatusBadRequest, "invalidValue", "displayName is required")
	}
	if len(g.DisplayName) > 256 {
		return g, Errorf(http.StatusBadRequest, "invalidValue", "displayName is longer than 256 bytes")
	}
	if g.ExternalID, err = str(doc, "externalId"); err != nil {
		return g, err
	}
	for _, e := range asList(doc["members"]) {
		m, ok := e.(map[string]any)
		if !ok {
			return g, Errorf(http.StatusBadRequest, "invalidValue", "members must be a list of objects {value}")
		}
		id, err := str(m, "value")
		if err != nil || id == "" {
			return g, Errorf(http.StatusBadRequest, "invalidValue", "members.value must be a user id")
		}
		su, err := s.store.SCIMUserByID(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return g, Errorf(http.StatusBadRequest, "invalidValue", "members: no user with id %q", id)
		}
		if err != nil {
			return g, err
		}
		g.Members = append(g.Members, su.UserID)
	}
	return g, nil
}

// lookupGroup returns group id, 404 when none.
func (s *Service) lookupGroup(ctx context.Context, id string) (store.SCIMGroup, error) {
	g, err := s.store.SCIMGroupByID(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return g, Errorf(http.StatusNotFound, "", "no group with id %q", id)
	}
	return g, err
}

// mapped reports whether g is the users or the admins group.
func (s *Service) mapped(g *store.SCIMGroup) bool {
	return g != nil && (s.cfg.UsersGroup != "" && strings.EqualFold(g.DisplayName, s.cfg.UsersGroup) ||
		s.cfg.AdminsGroup != "" && strings.EqualFold(g.DisplayName, s.cfg.AdminsGroup))
}

// putGroup stores g and applies what its change (from old, nil when new)
// means for the access of the users it touches.
func (s *Service) putGroup(ctx context.Context, a core.Actor, old *store.SCIMGroup, g store.SCIMGroup) (store.SCIMGroup, error) {
	now := s.clock.Now().UTC()
	g.Updated = now
	if old != nil {
		g.Created = old.Created
	} else {
		g.Created = now
	}
	if err := s.store.PutSCIMGroup(ctx, g); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return g, Errorf(http.StatusConflict, "uniqueness", "a group named %q already exists", g.DisplayName)
		}
		return g, err
	}
	if err := s.groupChanged(ctx, a, old, &g); err != nil {
		s.undo(ctx, a, &g, old)
		return g, err
	}
	return g, nil
}

// undo puts group was back after a change to now that could not be
// applied to every member (the last admin would lose admin or be
// disabled), and applies its members again; was nil deletes now.
func (s *Service) undo(ctx context.Context, a core.Actor, now, was *store.SCIMGroup) {
	var err error
	id := ""
	if was != nil {
		id, err = was.ID, s.store.PutSCIMGroup(ctx, *was)
	} else {
		id, err = now.ID, s.store.DeleteSCIMGroup(ctx, now.ID)
	}
	if err == nil {
		err = s.groupChanged(ctx, a, now, was)
	}
	if err != nil {
		s.log.Error("SCIM group change refused, and undoing it failed", "group", id, "err", err)
	}
}

// groupChanged applies again the users whose access a change of a group
// from old to g may change: the members who came or went of a mapped
// group, or every member of a group that became or stopped being one.
func (s *Service) groupChanged(ctx context.Context, a core.Actor, old, g *store.SCIMGroup) error {
	if !s.mapped(old) && !s.mapped(g) {
		return nil
	}
	var before, after []int64
	if old != nil {
		before = old.Members
	}
	if g != nil {
		after = g.Members
	}
	var touched []int64
	if old != nil && g != nil && strings.EqualFold(old.DisplayName, g.DisplayName) {
		for _, id := range before {
			if !slices.Contains(after, id) {
				touched = append(touched, id)
			}
		}
		for _, id := range after {
			if !slices.Contains(before, id) {
				touched = append(touched, id)
			}
		}
	} else {
		touched = append(append(touched, before...), after...)
	}
	slices.Sort(touched)
	var first error
	for _, id := range slices.Compact(touched) {
		su, err := s.store.SCIMUserByUserID(ctx, id)
		if errors.Is(err, store.ErrNotFound) || err == nil && su.Deleted {
			continue
		}
		if err == nil {
			_, err = s.apply(ctx, a, su, fieldsOf(su))
		}
		if err != nil && first == nil {
			first = err
		}
	}
	return first
}

func (s *Service) writeGroup(w http.ResponseWriter, r *http.Request, status int, g store.SCIMGroup) error {
	doc, err := s.groupDoc(r.Context(), r, g, wantMembers(r))
	if err != nil {
		return err
	}
	if status == http.StatusCreated {
		w.Header().Set("Location", s.base(r)+"/Groups/"+g.ID)
	}
	writeJSON(w, status, doc)
	return nil
}

func (s *Service) readGroup(r *http.Request) (store.SCIMGroup, error) {
	body, err := readBody(r)
	if err != nil {
		return store.SCIMGroup{}, err
	}
	doc, err := groupSchema.normalize(body)
	if err != nil {
		return store.SCIMGroup{}, err
	}
	return s.groupFromDoc(r.Context(), doc)
}

func (s *Service) groupCreate(w http.ResponseWriter, r *http.Request, a core.Actor) error {
	g, err := s.readGroup(r)
	if err != nil {
		return err
	}
	g.ID = newID()
	if g, err = s.putGroup(r.Context(), a, nil, g); err != nil {
		return err
	}
	return s.writeGroup(w, r, http.StatusCreated, g)
}

func (s *Service) groupGet(w http.ResponseWriter, r *http.Request, a core.Actor) error {
	g, err := s.lookupGroup(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	return s.writeGroup(w, r, http.StatusOK, g)
}

func (s *Service) groupList(w http.ResponseWriter, r *http.Request, a core.Actor) error {
	ctx := r.Context()
	f, err := listFilter(r.URL.Query().Get("filter"), "displayName", "externalId")
	if err != nil {
		return err
	}
	start, count, err := page(r)
	if err != nil {
		return err
	}
	gs, total, err := s.store.SCIMGroups(ctx, store.SCIMGroupQuery{DisplayName: f["displayName"], ExternalID: f["externalId"], Offset: start - 1, Limit: count})
	if err != nil {
		return err
	}
	items := make([]any, 0, len(gs))
	for _, g := range gs {
		doc, err := s.groupDoc(ctx, r, g, wantMembers(r))
		if err != nil {
			return err
		}
		items = append(items, doc)
	}
	writeJSON(w, http.StatusOK, listResponse(total, start, items))
	return nil
}

func (s *Service) groupReplace(w http.ResponseWriter, r *http.Request, a core.Actor) error {
	old, err := s.lookupGroup(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	g, err := s.readGroup(r)
	if err != nil {
		return err
	}
	g.ID = old.ID
	if g, err = s.putGroup(r.Context(), a, &old, g); err != nil {
		return err
	}
	return s.writeGroup(w, r, http.StatusOK, g)
}

func (s *Service) groupPatch(w http.ResponseWriter, r *http.Request, a core.Actor) error {
	ctx := r.Context()
	old, err := s.lookupGroup(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	p, err := readPatch(r)
	if err != nil {
		return err
	}
	doc, err := s.groupDoc(ctx, r, old, true)
	if err != nil {
		return err
	}
	if err := groupSchema.applyPatch(doc, p.Operations); err != nil {
		return err
	}
	g, err := s.groupFromDoc(ctx, doc)
	if err != nil {
		return err
	}
	g.ID = old.ID
	if g, err = s.putGroup(ctx, a, &old, g); err != nil {
		return err
	}
	// Entra ID expects 204 to a group PATCH; the RFC allows either.
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Service) groupDelete(w http.ResponseWriter, r *http.Request, a core.Actor) error {
	ctx := r.Context()
	old, err := s.lookupGroup(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := s.store.DeleteSCIMGroup(ctx, old.ID); err != nil {
		return err
	}
	if err := s.groupChanged(ctx, a, &old, nil); err != nil {
		s.undo(ctx, a, nil, &old)
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
