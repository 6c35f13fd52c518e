package scim

import (
	"encoding/json"
	"net/http"
	"strings"
)

// cond is one comparison of a filter: attr op value.
type cond struct {
	attr  string
	op    string // lowercase: eq, pr
	value any
}

// parseFilter parses the filters this service evaluates (RFC 7644
// 3.4.2.2): comparisons `attr eq value` or `attr pr`, joined by "and".
// A filter that is not well formed is an invalidFilter error naming
// where; one using or, not, grouping or an operator other than eq and pr
// is an invalidFilter error saying so.
func parseFilter(f string) ([]cond, error) {
	bad := func(format string, args ...any) ([]cond, error) {
		return nil, Errorf(http.StatusBadRequest, "invalidFilter", format, args...)
	}
	toks, err := tokenize(f)
	if err != nil {
		return nil, err
	}
	if len(toks) == 0 {
		return bad("filter is empty")
	}
	var out []cond
	for i := 0; i < len(toks); {
		if i > 0 {
			switch strings.ToLower(toks[i]) {
			case "and":
				i++
			case "or", "not":
				return bad("filter %q: %s is not supported here; use eq joined by and", f, toks[i])
			default:
				return bad("filter %q: want and between comparisons, not %q", f, toks[i])
			}
		}
		if i >= len(toks) {
			return bad("filter %q ends after and", f)
		}
		attr := toks[i]
		if !isAttrPath(attr) {
			return bad("filter %q: %q is not an attribute name", f, attr)
		}
		if i+1 >= len(toks) {
			return bad("filter %q: %s has no operator", f, attr)
		}
		op := strings.ToLower(toks[i+1])
		switch op {
		case "pr":
			out = append(out, cond{attr: attr, op: op})
			i += 2
			continue
		case "eq":
		case "ne", "co", "sw", "ew", "gt", "ge", "lt", "le":
			return bad("filter %q: operator %s is not supported here; use eq", f, op)
		default:
			return bad("filter %q: %q is not an operator (eq, ne, co, sw, ew, gt, ge, lt, le, pr)", f, toks[i+1])
		}
		if i+2 >= len(toks) {
			return bad("filter %q: %s eq has no value", f, attr)
		}
		var v any
		if err := json.Unmarshal([]byte(toks[i+2]), &v); err != nil {
			return bad("filter %q: %s is not a value (a \"quoted string\", true, false, null or a number)", f, toks[i+2])
		}
		out = append(out, cond{attr: attr, op: op, value: v})
		i += 3
	}
	return out, nil
}

func isAttrPath(s string) bool {
	if s == "" || !(s[0] >= 'a' && s[0] <= 'z' || s[0] >= 'A' && s[0] <= 'Z') {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._-:$", r)) {
			return false
		}
	}
	return true
}

// tokenize splits a filter into words, JSON strings (kept quoted) and
// parentheses, which it refuses.
func tokenize(f string) ([]string, error) {
	var toks []string
	for i := 0; i < len(f); {
		c := f[i]
		switch {
		case c == ' ' || c == '\t':
			i++
		case c == '"':
			j := i + 1
			for ; j < len(f) && f[j] != '"'; j++ {
				if f[j] == '\\' {
					j++
				}
			}
			if j >= len(f) {
				return nil, Errorf(http.StatusBadRequest, "invalidFilter", "filter %q: string not closed", f)
			}
			toks = append(toks, f[i:j+1])
			i = j + 1
		case c == '(' || c == ')' || c == '[' || c == ']':
			return nil, Errorf(http.StatusBadRequest, "invalidFilter", "filter %q: grouping with %c is not supported here", f, c)
		default:
			j := i
			for j < len(f) && f[j] != ' ' && f[j] != '\t' && f[j] != '"' && f[j] != '(' && f[j] != ')' {
				j++
			}
			toks = append(toks, f[i:j])
			i = j
		}
	}
	return toks, nil
}

// listFilter parses a list request's filter into the values of the
// attributes allowed (lowercase name to canonical), each compared with eq.
func listFilter(f string, allowed ...string) (map[string]string, error) {
	out := map[string]string{}
	if strings.TrimSpace(f) == "" {
		return out, nil
	}
	conds, err := parseFilter(f)
	if err != nil {
		return nil, err
	}
	for _, c := range conds {
		name := ""
		for _, a := range allowed {
			if strings.EqualFold(c.attr, a) || strings.EqualFold(c.attr, "urn:ietf:params:scim:schemas:core:2.0:User:"+a) ||
				strings.EqualFold(c.attr, "urn:ietf:params:scim:schemas:core:2.0:Group:"+a) {
				name = a
			}
		}
		s, isString := c.value.(string)
		switch {
		case name == "":
			return nil, Errorf(http.StatusBadRequest, "invalidFilter", "filter %q: only %s can be filtered on", f, strings.Join(allowed, " eq, ")+" eq")
		case c.op != "eq" || !isString:
			return nil, Errorf(http.StatusBadRequest, "invalidFilter", "filter %q: %s takes eq \"a string\"", f, name)
		}
		out[name] = s
	}
	return out, nil
}
