package api

import (
	"net/http"
	"time"

	"github.com/totpbox/totpbox/enroll/server/core"
	"github.com/totpbox/totpbox/enroll/store"
)

// apiAuditEntry is an audit event as the API shows it.
type apiAuditEntry struct {
	ID      int64     `json:"id"`
	Time    time.Time `json:"time"`
	Actor   string    `json:"actor"`
	Type    string    `json:"type"`
	Target  string    `json:"target"`
	Detail  string    `json:"detail"`
	Address string    `json:"address"`
}

type apiAuditPage struct {
	Entries []apiAuditEntry `json:"entries"`
	// Next is the cursor to pass as after for the following page; it
	// stays the same while no newer event has committed.
	Next string `json:"next"`
}

// apiAudit serves GET /api/v1/audit: audit events after a cursor, oldest
// first. Following next never skips or repeats an event, whichever
// replica answers, while events are written.
func (s *API) apiAudit(w http.ResponseWriter, r *http.Request, a core.Actor) (int, any, error) {
	q, err := core.ParseAuditQuery(r.URL.Query())
	if err != nil {
		return 0, nil, err
	}
	evs, err := s.store.AuditAfter(r.Context(), q)
	if err != nil {
		return 0, nil, err
	}
	p := apiAuditPage{Entries: make([]apiAuditEntry, 0, len(evs)), Next: core.AuditCursor(evs, q.After)}
	for _, e := range evs {
		p.Entries = append(p.Entries, toAPIAudit(e))
	}
	return http.StatusOK, p, nil
}

func toAPIAudit(e store.AuditEvent) apiAuditEntry {
	return apiAuditEntry{ID: e.ID, Time: e.Time.UTC(), Actor: e.Actor, Type: e.Action, Target: e.Target, Detail: e.Detail, Address: e.IP}
}
