package core

import (
	"net/url"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/totpbox/totpbox/enroll/store"
)

// AuditPageMax is the most audit events one page of the export returns.
const AuditPageMax = 1000

// ParseAuditQuery reads the audit export's filters from a query string:
// after (the cursor), limit (1 to AuditPageMax, default 100), type (an
// action, or a prefix ending in ".*"), user and since (RFC 3339). A bad
// value is a 400 naming it.
func ParseAuditQuery(v url.Values) (store.AuditQuery, error) {
	var q store.AuditQuery
	if s := v.Get("after"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return q, Fail(400, "after must be a cursor from a previous page's next, not %q", clip(s))
		}
		q.After = n
	}
	q.Limit = 100
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > AuditPageMax {
			return q, Fail(400, "limit must be a whole number from 1 to %d, not %q", AuditPageMax, clip(s))
		}
		q.Limit = n
	}
	for _, f := range []struct {
		name string
		dst  *string
	}{{"type", &q.Action}, {"user", &q.User}} {
		s := v.Get(f.name)
		if len(s) > 200 || !utf8.ValidString(s) {
			return q, Fail(400, "%s must be valid text of at most 200 bytes", f.name)
		}
		*f.dst = s
	}
	if s := v.Get("since"); s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return q, Fail(400, "since must be an RFC 3339 time such as 2026-12-01T00:00:00Z, not %q", clip(s))
		}
		q.Since = t
	}
	return q, nil
}

// AuditCursor is the cursor that follows events: the id of the last one,
// or after when there is none.
func AuditCursor(evs []store.AuditEvent, after int64) string {
	if len(evs) > 0 {
		after = evs[len(evs)-1].ID
	}
	return strconv.FormatInt(after, 10)
}

// clip shortens a value quoted in an error.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
