package server

import (
	"context"
	"net"
	"net/http"

	"github.com/totpbox/totpbox/enroll/store"
)

// actor is who makes a change, for the audit log.
type actor struct {
	name string // username, "token:<name>" or "system"
	ip   string
}

var system = actor{name: "system"}

// audit records an event. A failure to record is logged, not returned: the
// action it describes has already happened.
func (s *Server) audit(ctx context.Context, a actor, action, target, detail string) {
	e := store.AuditEvent{Time: s.clock.Now().UTC(), Actor: a.name, Action: action, Target: target, Detail: detail, IP: a.ip}
	if err := s.store.Audit(ctx, e); err != nil {
		s.log.Error("audit event not recorded", "action", action, "target", target, "err", err)
	}
}

// clientIP is the address of the request's peer, without the port.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
