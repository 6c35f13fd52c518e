package core

import (
	"context"
	"fmt"

	"github.com/totpbox/totpbox/enroll/store"
)

// Sweep is the core's pass of the janitor: it removes expired pending
// registrations (telling the appliances they were offered to), clears
// expired lockouts and forgets idle rate-limit and cache state. Errors are
// logged, and the next pass tries again.
func (s *Core) Sweep(ctx context.Context) {
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
		s.Audit(ctx, System, "device.expire", target, fmt.Sprintf("pending registration of %q expired", d.Name))
		s.tellTransition(ctx, transitions[RegPending][EvExpire], d)
	}
	unlocked, err := s.store.ClearExpiredLockouts(ctx, now.UTC())
	if err != nil {
		s.log.Error("janitor: clear expired lockouts", "err", err)
	}
	for _, d := range unlocked {
		target := fmt.Sprintf("device:%d", d.ID)
		if u, err := s.store.UserByID(ctx, d.UserID); err == nil {
			target = deviceTarget(u, d)
			s.userChanged(u.Username)
		}
		s.Audit(ctx, System, "device.unlock", target, "lockout expired")
	}
	s.verifyIP.Prune(now)
	s.verifyUser.Prune(now)
	s.cache.prune(now)
	s.sent.prune(now.Add(-s.cfg.RegistrationTimeout))
}

// ExpireRegistration removes the pending registration d of u that a
// person just found expired, as the janitor would: audited, and the
// appliances it was offered to are told. It does nothing when d is
// already gone.
func (s *Core) ExpireRegistration(ctx context.Context, u store.User, d store.Device) {
	if err := s.store.DeleteDevice(ctx, d.ID); err == nil {
		s.cache.forgetKey(d.ID)
		s.Audit(ctx, System, "device.expire", deviceTarget(u, d), fmt.Sprintf("pending registration of %q expired", d.Name))
		s.tellTransition(ctx, transitions[RegPending][EvExpire], d)
	}
}
