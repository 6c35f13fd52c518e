package scim

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"
)

// readBody reads one JSON object from the body into a map, refusing
// other media types, bodies over MaxBody and trailing data.
func readBody(r *http.Request) (map[string]any, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/scim+json" && mt != "application/json" {
			return nil, Errorf(http.StatusUnsupportedMediaType, "", "Content-Type must be application/scim+json, not %q", ct)
		}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe) || err == nil && len(body) > MaxBody:
		return nil, Errorf(http.StatusRequestEntityTooLarge, "", "request body is over %d bytes", MaxBody)
	case err != nil:
		return nil, Errorf(http.StatusBadRequest, "invalidSyntax", "request body could not be read")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil {
		return nil, Errorf(http.StatusBadRequest, "invalidSyntax", "request body is not a JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, Errorf(http.StatusBadRequest, "invalidSyntax", "data after the JSON object")
	}
	return m, nil
}

// schema names a resource's attributes: lowercase name to its canonical
// spelling, and which are multi-valued.
type schema struct {
	urn        string
	extensions []string
	attrs      map[string]string
	multi      map[string]bool
}

func newSchema(urn string, extensions []string, attrs []string, multi ...string) *schema {
	s := &schema{urn: urn, extensions: extensions, attrs: map[string]string{}, multi: map[string]bool{}}
	for _, a := range append(attrs, extensions...) {
		s.attrs[strings.ToLower(a)] = a
	}
	for _, m := range multi {
		s.multi[m] = true
	}
	return s
}

// canonical returns the canonical name of attribute a, or false.
func (s *schema) canonical(a string) (string, bool) {
	c, ok := s.attrs[strings.ToLower(a)]
	return c, ok
}

// path is an attribute path (RFC 7644 3.5.2): attr, attr.sub or
// attr[filter].sub; attr may be an extension's URN.
type path struct {
	attr   string
	filter []cond
	sub    string
}

// parsePath parses p against sch.
func (sch *schema) parsePath(p string) (path, error) {
	bad := func(format string, args ...any) (path, error) {
		return path{}, Errorf(http.StatusBadRequest, "invalidPath", format, args...)
	}
	rest := strings.TrimSpace(p)
	var out path
	lower := strings.ToLower(rest)
	for _, ext := range sch.extensions {
		if l := strings.ToLower(ext); lower == l || strings.HasPrefix(lower, l+":") {
			out.attr = ext
			out.sub = strings.TrimPrefix(rest[len(ext):], ":")
			return out, nil
		}
	}
	if l := strings.ToLower(sch.urn) + ":"; strings.HasPrefix(lower, l) {
		rest = rest[len(l):]
	}
	if i := strings.IndexByte(rest, '['); i >= 0 {
		j := strings.LastIndexByte(rest, ']')
		if j < i {
			return bad("path %q: [ without ]", p)
		}
		f, err := parseFilter(rest[i+1 : j])
		if err != nil {
			return bad("path %q: %v", p, err.(*Error).Detail)
		}
		out.filter = f
		after := rest[j+1:]
		if after != "" {
			if after[0] != '.' || len(after) == 1 {
				return bad("path %q: want .subAttribute after ]", p)
			}
			out.sub = after[1:]
		}
		rest = rest[:i]
	} else if i := strings.IndexByte(rest, '.'); i >= 0 {
		rest, out.sub = rest[:i], rest[i+1:]
	}
	a, ok := sch.canonical(rest)
	if !ok || rest == "" {
		return bad("unknown attribute %q", p)
	}
	out.attr = a
	if out.filter != nil && !sch.multi[a] {
		return bad("path %q: %s is not multi-valued", p, a)
	}
	return out, nil
}

// patchRequest is a PATCH body (RFC 7644 3.5.2).
type patchRequest struct {
	Schemas    []string  `json:"schemas"`
	Operations []patchOp `json:"Operations"`
}

type patchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value"`
}

// PatchSchema is the schema of PATCH bodies.
const PatchSchema = "urn:ietf:params:scim:api:messages:2.0:PatchOp"

// readPatch reads a PATCH request's body (as readBody does) and parses it.
func readPatch(r *http.Request) (patchRequest, error) {
	m, err := readBody(r)
	if err != nil {
		return patchRequest{}, err
	}
	b, _ := json.Marshal(m)
	var p patchRequest
	if err := json.Unmarshal(b, &p); err != nil {
		return p, Errorf(http.StatusBadRequest, "invalidSyntax", "PATCH body: want schemas and Operations [{op, path, value}]")
	}
	if len(p.Operations) == 0 {
		return p, Errorf(http.StatusBadRequest, "invalidSyntax", "PATCH body has no Operations")
	}
	return p, nil
}

// applyPatch applies ops to doc, a resource as its JSON map with
// canonical top-level names. It accepts what Entra ID sends beside RFC
// 7644: ops in any case ("Replace"), a path-less op whose value object's
// keys are paths ("name.givenName"), a remove with a value list of
// members, and a replace through a filter no element matches yet (the
// element is made).
func (sch *schema) applyPatch(doc map[string]any, ops []patchOp) error {
	for _, o := range ops {
		op := strings.ToLower(o.Op)
		if op != "add" && op != "replace" && op != "remove" {
			return Errorf(http.StatusBadRequest, "invalidSyntax", "unknown op %q: want add, replace or remove", o.Op)
		}
		if strings.TrimSpace(o.Path) == "" {
			if op == "remove" {
				return Errorf(http.StatusBadRequest, "noTarget", "remove needs a path")
			}
			obj, ok := o.Value.(map[string]any)
			if !ok {
				return Errorf(http.StatusBadRequest, "invalidValue", "%s without a path needs an object value", op)
			}
			for k, v := range obj {
				if ext, ok := sch.extension(k); ok {
					sub, isObj := v.(map[string]any)
					if !isObj {
						return Errorf(http.StatusBadRequest, "invalidValue", "%s must be an object", ext)
					}
					for sk, sv := range sub {
						if err := sch.apply(doc, op, path{attr: ext, sub: sk}, sv); err != nil {
							return err
						}
					}
					continue
				}
				p, err := sch.parsePath(k)
				if err != nil {
					return err
				}
				if err := sch.apply(doc, op, p, v); err != nil {
					return err
				}
			}
			continue
		}
		p, err := sch.parsePath(o.Path)
		if err != nil {
			return err
		}
		if op != "remove" && o.Value == nil {
			return Errorf(http.StatusBadRequest, "invalidValue", "%s %s needs a value", op, o.Path)
		}
		if err := sch.apply(doc, op, p, o.Value); err != nil {
			return err
		}
	}
	return nil
}

func (sch *schema) extension(k string) (string, bool) {
	for _, ext := range sch.extensions {
		if strings.EqualFold(k, ext) {
			return ext, true
		}
	}
	return "", false
}

// apply does one operation at p.
func (sch *schema) apply(doc map[string]any, op string, p path, v any) error {
	switch {
	case p.filter == nil && p.sub == "":
		switch {
		case op == "remove" && v != nil && sch.multi[p.attr]:
			// Entra: {"op":"Remove","path":"members","value":[{"value":"id"}]}.
			keep := []any{}
			for _, e := range asList(doc[p.attr]) {
				if !containsValue(asList(v), e) {
					keep = append(keep, e)
				}
			}
			doc[p.attr] = keep
		case op == "remove":
			delete(doc, p.attr)
		case op == "add" && sch.multi[p.attr]:
			list := asList(doc[p.attr])
			for _, e := range asList(v) {
				if !containsValue(list, e) {
					list = append(list, e)
				}
			}
			doc[p.attr] = list
		default:
			doc[p.attr] = v
		}
	case p.filter == nil:
		if sch.multi[p.attr] {
			for _, e := range asList(doc[p.attr]) {
				if m, ok := e.(map[string]any); ok {
					setSub(m, op, p.sub, v)
				}
			}
			return nil
		}
		m, _ := doc[p.attr].(map[string]any)
		if m == nil {
			if op == "remove" {
				return nil
			}
			m = map[string]any{}
		}
		setSub(m, op, p.sub, v)
		doc[p.attr] = m
	default:
		list := asList(doc[p.attr])
		var out []any
		matched := false
		for _, e := range list {
			m, ok := e.(map[string]any)
			if !ok || !matches(m, p.filter) {
				out = append(out, e)
				continue
			}
			matched = true
			switch {
			case op == "remove" && p.sub == "":
				continue
			case p.sub != "":
				setSub(m, op, p.sub, v)
			default:
				if nm, ok := v.(map[string]any); ok {
					for k, x := range nm {
						setSub(m, "replace", k, x)
					}
				}
			}
			out = append(out, m)
		}
		if !matched && op != "remove" {
			m := map[string]any{}
			for _, c := range p.filter {
				if c.op == "eq" {
					m[c.attr] = c.value
				}
			}
			if p.sub != "" {
				m[p.sub] = v
			} else if nm, ok := v.(map[string]any); ok {
				for k, x := range nm {
					m[k] = x
				}
			}
			out = append(out, m)
		}
		if out == nil {
			out = []any{}
		}
		doc[p.attr] = out
	}
	return nil
}

// setSub sets or removes sub-attribute k of m, matching its name in any
// case.
func setSub(m map[string]any, op, k string, v any) {
	for old := range m {
		if strings.EqualFold(old, k) {
			delete(m, old)
		}
	}
	if op != "remove" {
		m[k] = v
	}
}

// get returns m's attribute k, matching its name in any case.
func get(m map[string]any, k string) any {
	if v, ok := m[k]; ok {
		return v
	}
	for old, v := range m {
		if strings.EqualFold(old, k) {
			return v
		}
	}
	return nil
}

func asList(v any) []any {
	switch x := v.(type) {
	case nil:
		return nil
	case []any:
		return append([]any(nil), x...)
	default:
		return []any{x}
	}
}

// containsValue reports whether list holds an element with e's value
// (the "value" sub-attribute of complex elements).
func containsValue(list []any, e any) bool {
	key := func(x any) any {
		if m, ok := x.(map[string]any); ok {
			return get(m, "value")
		}
		return x
	}
	k := key(e)
	for _, x := range list {
		if kx := key(x); kx == k || fmtValue(kx) == fmtValue(k) && k != nil {
			return true
		}
	}
	return false
}

func fmtValue(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// matches reports whether m satisfies every condition.
func matches(m map[string]any, conds []cond) bool {
	for _, c := range conds {
		v := get(m, c.attr)
		switch c.op {
		case "pr":
			if v == nil {
				return false
			}
		case "eq":
			if !valueEqual(v, c.value) {
				return false
			}
		}
	}
	return true
}

func valueEqual(a, b any) bool {
	as, aok := a.(string)
	bs, bok := b.(string)
	if aok && bok {
		return strings.EqualFold(as, bs)
	}
	return fmtValue(a) == fmtValue(b)
}
