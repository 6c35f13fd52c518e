package scim

import (
	"net/http"
	"strings"

	"github.com/totpbox/totpbox/enroll/server/core"
)

func (s *Service) serviceProviderConfig(w http.ResponseWriter, r *http.Request, a core.Actor) error {
	writeJSON(w, http.StatusOK, map[string]any{
		"schemas":               []any{"urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"},
		"documentationUri":      "https://github.com/totpbox/totpbox/blob/main/docs/directory.md",
		"patch":                 map[string]any{"supported": true},
		"bulk":                  map[string]any{"supported": false, "maxOperations": 0, "maxPayloadSize": MaxBody},
		"filter":                map[string]any{"supported": true, "maxResults": MaxPage},
		"changePassword":        map[string]any{"supported": false},
		"sort":                  map[string]any{"supported": false},
		"etag":                  map[string]any{"supported": false},
		"authenticationSchemes": []any{map[string]any{"type": "oauthbearertoken", "name": "OAuth Bearer Token", "description": "A token made with totpserver token create NAME --scope scim", "primary": true}},
		"meta":                  map[string]any{"resourceType": "ServiceProviderConfig", "location": s.base(r) + "/ServiceProviderConfig"},
	})
	return nil
}

func (s *Service) resourceTypeDocs(r *http.Request) []any {
	return []any{
		map[string]any{
			"schemas": []any{"urn:ietf:params:scim:schemas:core:2.0:ResourceType"}, "id": "User", "name": "User",
			"endpoint": "/Users", "schema": UserSchema,
			"schemaExtensions": []any{map[string]any{"schema": EnterpriseSchema, "required": false}},
			"meta":             map[string]any{"resourceType": "ResourceType", "location": s.base(r) + "/ResourceTypes/User"},
		},
		map[string]any{
			"schemas": []any{"urn:ietf:params:scim:schemas:core:2.0:ResourceType"}, "id": "Group", "name": "Group",
			"endpoint": "/Groups", "schema": GroupSchema,
			"meta": map[string]any{"resourceType": "ResourceType", "location": s.base(r) + "/ResourceTypes/Group"},
		},
	}
}

func (s *Service) resourceTypes(w http.ResponseWriter, r *http.Request, a core.Actor) error {
	docs := s.resourceTypeDocs(r)
	writeJSON(w, http.StatusOK, listResponse(len(docs), 1, docs))
	return nil
}

func (s *Service) resourceType(w http.ResponseWriter, r *http.Request, a core.Actor) error {
	for _, d := range s.resourceTypeDocs(r) {
		if strings.EqualFold(d.(map[string]any)["id"].(string), r.PathValue("name")) {
			writeJSON(w, http.StatusOK, d)
			return nil
		}
	}
	return Errorf(http.StatusNotFound, "", "no resource type %q", r.PathValue("name"))
}

func attr(name, typ string, required bool, mutability, uniqueness string, sub ...any) map[string]any {
	a := map[string]any{
		"name": name, "type": typ, "multiValued": false, "required": required, "caseExact": false,
		"mutability": mutability, "returned": "default", "uniqueness": uniqueness,
	}
	if len(sub) > 0 {
		a["subAttributes"] = sub
	}
	return a
}

func multi(a map[string]any) map[string]any {
	a["multiValued"] = true
	return a
}

// schemaDocs describes the attributes the service keeps (RFC 7643 7).
func (s *Service) schemaDocs(r *http.Request) []any {
	meta := func(urn string) map[string]any {
		return map[string]any{"resourceType": "Schema", "location": s.base(r) + "/Schemas/" + urn}
	}
	external := attr("externalId", "string", false, "readWrite", "none")
	external["caseExact"] = true
	return []any{
		map[string]any{
			"schemas": []any{"urn:ietf:params:scim:schemas:core:2.0:Schema"}, "id": UserSchema, "name": "User",
			"description": "A user of totpbox",
			"attributes": []any{
				attr("userName", "string", true, "readWrite", "server"),
				external,
				attr("name", "complex", false, "readWrite", "none",
					attr("formatted", "string", false, "readWrite", "none"),
					attr("givenName", "string", false, "readWrite", "none"),
					attr("familyName", "string", false, "readWrite", "none")),
				attr("displayName", "string", false, "readWrite", "none"),
				attr("active", "boolean", false, "readWrite", "none"),
				multi(attr("emails", "complex", false, "readWrite", "none",
					attr("value", "string", false, "readWrite", "none"),
					attr("type", "string", false, "readWrite", "none"),
					attr("primary", "boolean", false, "readWrite", "none"))),
				multi(attr("groups", "complex", false, "readOnly", "none",
					attr("value", "string", false, "readOnly", "none"),
					attr("display", "string", false, "readOnly", "none"))),
			},
			"meta": meta(UserSchema),
		},
		map[string]any{
			"schemas": []any{"urn:ietf:params:scim:schemas:core:2.0:Schema"}, "id": GroupSchema, "name": "Group",
			"description": "A group; membership of the groups named in directory.scim grants use or admin",
			"attributes": []any{
				attr("displayName", "string", true, "readWrite", "server"),
				multi(attr("members", "complex", false, "readWrite", "none",
					attr("value", "string", false, "immutable", "none"),
					attr("display", "string", false, "readOnly", "none"))),
			},
			"meta": meta(GroupSchema),
		},
	}
}

func (s *Service) schemas(w http.ResponseWriter, r *http.Request, a core.Actor) error {
	docs := s.schemaDocs(r)
	writeJSON(w, http.StatusOK, listResponse(len(docs), 1, docs))
	return nil
}

func (s *Service) schema(w http.ResponseWriter, r *http.Request, a core.Actor) error {
	for _, d := range s.schemaDocs(r) {
		if d.(map[string]any)["id"] == r.PathValue("urn") {
			writeJSON(w, http.StatusOK, d)
			return nil
		}
	}
	return Errorf(http.StatusNotFound, "", "no schema %q", r.PathValue("urn"))
}
