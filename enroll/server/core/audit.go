package core

import (
	"context"
	"fmt"
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
// as the audit row. Inside Atomic both join the change's transaction and
// a failure to write them fails it; the event goes to the sinks (syslog)
// and the deliverers hear of it once the change commits. Outside Atomic
// a failure to record is logged, not returned: the action it describes
// has already happened.
func (s *Core) Audit(ctx context.Context, a Actor, action, target, detail string) {
	e := store.AuditEvent{Time: s.clock.Now().UTC(), Actor: a.Name, Action: action, Target: target, Detail: detail, IP: a.IP}
	ev, hook := events.WebhookEvent(e)
	var err error
	if hook {
		err = s.store.AuditWithEvent(ctx, e, ev)
	} else {
		err = s.store.Audit(ctx, e)
	}
	if p, ok := ctx.Value(changeKey{}).(*change); ok {
		if err != nil && p.err == nil {
			p.err = fmt.Errorf("audit %s: %w", action, err)
		}
		p.audit = append(p.audit, e)
		p.hooks = p.hooks || hook
		return
	}
	if err != nil {
		s.log.Error("audit event not recorded", "action", action, "target", target, "err", err)
		return
	}
	s.published(e, hook)
}

// change is what Audit recorded inside an Atomic call, published when
// its transaction commits.
type change struct {
	audit []store.AuditEvent
	hooks bool // one of them raised a webhook event
	err   error
}

type changeKey struct{}

// Atomic runs fn as one change: the store calls fn makes with the
// context it is given, and the audit and outbox rows of the events fn
// records with Audit, commit together or not at all (see
// store.Store.Atomic). An error of fn, or a failure to write an audit
// or outbox row, rolls the change back and is returned. Only after the
// commit do the events reach the sinks and the deliverers. fn must not
// call the appliance API's notices, the rate limits or RecordUses, which
// do not join the transaction.
func (s *Core) Atomic(ctx context.Context, fn func(ctx context.Context) error) error {
	if _, ok := ctx.Value(changeKey{}).(*change); ok {
		return fn(ctx) // joins the outer change
	}
	var p *change
	err := s.store.Atomic(ctx, func(ctx context.Context) error {
		p = &change{}
		if err := fn(context.WithValue(ctx, changeKey{}, p)); err != nil {
			return err
		}
		return p.err
	})
	if err != nil {
		return err
	}
	for i, e := range p.audit {
		s.published(e, p.hooks && i == len(p.audit)-1)
	}
	return nil
}

// published tells the deliverers of a new webhook event (when hook) and
// hands e to the sinks.
func (s *Core) published(e store.AuditEvent, hook bool) {
	if hook && s.bus != nil {
		s.bus.Publish(NoticeWebhookEvent, "")
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
