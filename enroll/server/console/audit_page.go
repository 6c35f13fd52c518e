package console

import (
	"github.com/totpbox/totpbox/enroll/server/core"

	"net/http"
	"strconv"

	"github.com/totpbox/totpbox/enroll/store"
)

type auditData struct {
	Events []store.AuditEvent
	// Older is the id to page back from, or 0 on the last page.
	Older int64
}

const auditPageSize = 100

// auditShow is the Audit log page, newest first, paged by id.
func (s *Console) auditShow(w http.ResponseWriter, r *http.Request, a *auth) {
	var before int64
	if v := r.URL.Query().Get("before"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			s.errorPage(w, r, a, core.Fail(400, "before must be a positive event id, not %q", v))
			return
		}
		before = n
	}
	evs, err := s.store.AuditEvents(r.Context(), auditPageSize+1, before)
	if err != nil {
		s.errorPage(w, r, a, err)
		return
	}
	d := auditData{Events: evs}
	if len(evs) > auditPageSize {
		d.Events = evs[:auditPageSize]
		d.Older = d.Events[len(d.Events)-1].ID
	}
	s.render(w, r, a, http.StatusOK, "audit", page{Title: "Audit log", Section: "audit", Wide: true, D: d})
}
