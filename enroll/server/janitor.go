package server

import (
	"context"
	"fmt"

	"github.com/totpbox/totpbox/enroll/server/ratelimit"
)

// sweep is one pass of the janitor; errors are logged, and the next pass
// tries again.
func (s *Server) sweep(ctx context.Context) {
	now := s.clock.Now()
	expired, err := s.store.DeleteExpiredPending(ctx, now.UTC())
	if err != nil {
		s.log.Error("janitor: remove expired registrations", "err", err)
	}
	for _, d := range expired {
		s.cache.forgetKey(d.ID)
		target := fmt.Sprintf("device:%d", d.ID)
		if u, err := s.store.UserByID(ctx, d.UserID); err == nil {
			target = deviceTarget(u, d)
		}
		s.audit(ctx, system, "device.expire", target, fmt.Sprintf("pending registration of %q expired", d.Name))
		s.tellAppliances(ctx, hookExpire, d)
	}
	if err := s.store.DeleteExpiredSessions(ctx, now.UTC()); err != nil {
		s.log.Error("janitor: remove expired sessions", "err", err)
	}
	unlocked, err := s.store.ClearExpiredLockouts(ctx, now.UTC())
	if err != nil {
		s.log.Error("janitor: clear expired lockouts", "err", err)
	}
	for _, d := range unlocked {
		target := fmt.Sprintf("device:%d", d.ID)
		if u, err := s.store.UserByID(ctx, d.UserID); err == nil {
			target = deviceTarget(u, d)
			s.cache.invalidate(u.Username)
		}
		s.audit(ctx, system, "device.unlock", target, "lockout expired")
	}
	for _, l := range []*ratelimit.Limiter{s.signinIP, s.signinUser, s.verifyIP, s.verifyUser} {
		l.Prune(now)
	}
	s.cache.prune(now)
	s.tokens.prune(now)
	s.sent.prune(now.Add(-s.cfg.RegistrationTimeout))
}
