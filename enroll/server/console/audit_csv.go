package console

import (
	"encoding/csv"
	"net/http"
	"strconv"
	"time"

	"github.com/totpbox/totpbox/enroll/server/core"
)

// auditCSVHeader names the CSV columns, as the audit API names its fields.
var auditCSVHeader = []string{"id", "time", "actor", "type", "target", "detail", "address"}

// auditCSV downloads the audit log as CSV, oldest first, with the audit
// API's filters (type, user, since, after; limit is the page read at a
// time). Cells that a spreadsheet would run as a formula are neutralised.
func (s *Console) auditCSV(w http.ResponseWriter, r *http.Request, a *auth) {
	q, err := core.ParseAuditQuery(r.URL.Query())
	if err != nil {
		s.errorPage(w, r, a, err)
		return
	}
	q.Limit = core.AuditPageMax
	evs, err := s.store.AuditAfter(r.Context(), q)
	if err != nil {
		s.errorPage(w, r, a, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/csv; charset=utf-8")
	h.Set("Content-Disposition", `attachment; filename="audit.csv"`)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	cw := csv.NewWriter(w)
	cw.Write(auditCSVHeader)
	for len(evs) > 0 {
		for _, e := range evs {
			cw.Write([]string{strconv.FormatInt(e.ID, 10), e.Time.UTC().Format(time.RFC3339Nano),
				csvCell(e.Actor), csvCell(e.Action), csvCell(e.Target), csvCell(e.Detail), csvCell(e.IP)})
		}
		cw.Flush()
		if cw.Error() != nil || len(evs) < q.Limit {
			break
		}
		q.After = evs[len(evs)-1].ID
		if evs, err = s.store.AuditAfter(r.Context(), q); err != nil {
			s.log.Error("audit CSV cut short", "err", err)
			return
		}
	}
	cw.Flush()
}

// csvCell neutralises a cell a spreadsheet would take for a formula (one
// starting with = + - @, a tab or a carriage return) by putting a single
// quote in front, as OWASP advises against CSV injection.
func csvCell(v string) string {
	if v == "" {
		return v
	}
	switch v[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return "'" + v
	}
	return v
}
