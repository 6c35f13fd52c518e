package core

import (
	"context"
	"fmt"
	"time"

	"github.com/totpbox/totpbox/enroll/store"
)

// Sweep is the core's pass of the janitor: it removes expired pending
// registrations (telling the appliances they were offered to), clears
// expired lockouts, prunes the appliances' clock history older than
// store.ClockHistoryKeep, adds the verify counts made since the last
// pass to the store (FlushVerifyCounts) and prunes those older than
// store.VerifyDailyKeep, and forgets idle rate-limit and cache state. Errors are
// logged, and the next pass tries again.
func (s *Core) Sweep(ctx context.Context) {
	now := s.clock.Now()
	s.expireDue(ctx, now)
	var unlocked []string
	if err := s.Atomic(ctx, func(ctx context.Context) error {
		ds, err := s.store.ClearExpiredLockouts(ctx, now.UTC())
		if err != nil {
			return err
		}
		unlocked = unlocked[:0]
		for _, d := range ds {
			target := fmt.Sprintf("device:%d", d.ID)
			if u, err := s.store.UserByID(ctx, d.UserID); err == nil {
				target = deviceTarget(u, d)
				unlocked = append(unlocked, u.Username)
			}
			s.Audit(ctx, System, "device.unlock", target, "lockout expired")
		}
		return nil
	}); err != nil {
		s.log.Error("janitor: clear expired lockouts", "err", err)
	}
	for _, name := range unlocked {
		s.userChanged(name)
	}
	if _, err := s.store.DeleteClockSamples(ctx, now.UTC().Add(-store.ClockHistoryKeep)); err != nil {
		s.log.Error("janitor: prune clock history", "err", err)
	}
	if err := s.FlushVerifyCounts(ctx); err != nil {
		s.log.Error("janitor: flush verify counts", "err", err)
	}
	if _, err := s.store.DeleteVerifyDays(ctx, now.UTC().Add(-store.VerifyDailyKeep)); err != nil {
		s.log.Error("janitor: prune verify counts", "err", err)
	}
	s.verifyIP.Prune(now)
	s.verifyUser.Prune(now)
	s.cache.prune(now)
}

// expireDue removes the pending registrations expired before now,
// remembering them so their pages say "expired" (see UserDevice), and
// tells the appliances they were offered to.
func (s *Core) expireDue(ctx context.Context, now time.Time) {
	var expired []store.Device
	if err := s.Atomic(ctx, func(ctx context.Context) error {
		var err error
		if expired, err = s.store.DeleteExpiredPending(ctx, now.UTC()); err != nil {
			return err
		}
		for _, d := range expired {
			target := fmt.Sprintf("device:%d", d.ID)
			if u, err := s.store.UserByID(ctx, d.UserID); err == nil {
				target = deviceTarget(u, d)
			}
			s.Audit(ctx, System, "device.expire", target, fmt.Sprintf("pending registration of %q expired", d.Name))
		}
		return nil
	}); err != nil {
		s.log.Error("janitor: remove expired registrations", "err", err)
		expired = nil
	}
	for _, d := range expired {
		s.cache.forgetKey(d.ID)
		s.tellTransition(ctx, transitions[RegPending][EvExpire], d)
	}
}

// ExpireRegistration removes the pending registration d that a person
// just found expired, as the janitor would (with every other one due):
// remembered as expired, audited, and the appliances it was offered to
// are told. It does nothing when d is already gone or not yet expired.
func (s *Core) ExpireRegistration(ctx context.Context, u store.User, d store.Device) {
	if d.Status != store.StatusPending || d.ExpiresAt.After(s.clock.Now()) {
		return
	}
	s.expireDue(ctx, d.ExpiresAt.Add(time.Microsecond))
}
