package core

import (
	"context"
	"net"
	"net/http"

	"github.com/totpbox/totpbox/enroll/store"
)

// Actor is who makes a change, for the audit log.
type Actor struct {
	// Name is a username, "token:<name>", "cli" or "system".
	Name string
	// IP is the client address of the request; empty when none.
	IP string
}

// System is the server itself acting: the janitor, an expired lockout.
var System = Actor{Name: "system"}

// Audit records an event. A failure to record is logged, not returned: the
// action it describes has already happened.
func (s *Core) Audit(ctx context.Context, a Actor, action, target, detail string) {
	e := store.AuditEvent{Time: s.clock.Now().UTC(), Actor: a.Name, Action: action, Target: target, Detail: detail, IP: a.IP}
	if err := s.store.Audit(ctx, e); err != nil {
		s.log.Error("audit event not recorded", "action", action, "target", target, "err", err)
	}
}

// ClientIP is the address of the request's peer, without the port.
func ClientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
