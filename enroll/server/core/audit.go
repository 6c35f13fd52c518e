package core

import (
	"context"
	"net"
	"net/http"

	"github.com/totpbox/totpbox/enroll/server/events"
	"github.com/totpbox/totpbox/enroll/store"
)

// Actor is who makes a change, for the audit log, and what they may do.
type Actor struct {
	// Name is a username, "token:<name>", "cli" or "system".
	Name string
	// IP is the client address of the request; empty when none.
	IP string
	// Role is what the actor may do; empty for a user with no role, who
	// reaches only their own MFA devices (the portal).
	Role Role
	// Sites limits the actor to the appliances of these sites; nil or
	// empty means every site.
	Sites []string
}

// System is the server itself acting: the janitor, an expired lockout.
var System = Actor{Name: "system", Role: RoleAdmin}

// Audit records an event. When it raises a webhook event
// (events.WebhookType), the outbox row is written in the same transaction
// as the audit row. Then the event goes to the event sinks (syslog). A
// failure to record is logged, not returned: the action it describes has
// already happened.
func (s *Core) Audit(ctx context.Context, a Actor, action, target, detail string) {
	e := store.AuditEvent{Time: s.clock.Now().UTC(), Actor: a.Name, Action: action, Target: target, Detail: detail, IP: a.IP}
	var err error
	if ev, ok := events.WebhookEvent(e); ok {
		err = s.store.AuditWithEvent(ctx, e, ev)
		if err == nil && s.bus != nil {
			s.bus.Publish(NoticeWebhookEvent, ev.ID)
		}
	} else {
		err = s.store.Audit(ctx, e)
	}
	if err != nil {
		s.log.Error("audit event not recorded", "action", action, "target", target, "err", err)
		return
	}
	s.Published(e)
}

// Published hands an audit event recorded elsewhere (the appliance API,
// the appliance monitor) to the event sinks.
func (s *Core) Published(e store.AuditEvent) {
	if s.cfg.Events != nil {
		s.cfg.Events.Publish(e)
	}
}

// NoticeWebhookEvent is the fleet notice that a webhook event was written
// to the outbox, so the deliverers wake at once instead of at their next
// poll.
const NoticeWebhookEvent = events.NoticeWebhookEvent

// ClientIP is the address of the request's peer, without the port.
func ClientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
