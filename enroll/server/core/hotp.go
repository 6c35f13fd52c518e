package core

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/totpbox/totpbox/enroll"
	"github.com/totpbox/totpbox/enroll/store"
)

// HOTP (RFC 4226) devices: imported event tokens. A code is searched for
// from the device's counter over the look-ahead window
// (Config.HOTPLookAhead); a match moves the counter past it in the one
// conditional update that accepts it (store.AdvanceCounter), so each code
// is accepted once. Failures, lockouts and their escalation are those of
// TOTP devices: countFailure counts a miss on every device tried.

// acceptCounter records code on the HOTP candidate c if it matches:
// matched is false when it does not. The cached counter may be behind
// (another server accepted a code meanwhile): a lost update is answered
// from what the store holds now, trying the code once more from there.
func (s *Core) acceptCounter(ctx context.Context, a Actor, cu *cachedUser, c candidate, code string, now time.Time) (VerifyResult, bool, error) {
	m, ok := enroll.VerifyHOTP(c.key, code, uint64(c.dev.Counter), s.cfg.HOTPLookAhead)
	if !ok {
		return VerifyResult{}, false, nil
	}
	d := c.dev
	for try := 0; ; try++ {
		use := store.CounterUse{DeviceID: d.ID, Old: d.Counter, New: int64(m) + 1, At: now.UTC()}
		err := s.store.AdvanceCounter(ctx, use)
		switch {
		case err == nil:
			d.Counter, d.LastUsed = use.New, use.At
			cu.setDevice(c.i, d)
			return VerifyResult{OK: true, DeviceID: d.ID}, true, nil
		case !errors.Is(err, store.ErrStale) && !errors.Is(err, store.ErrNotFound):
			return VerifyResult{}, true, err
		}
		s.cache.invalidate(cu.key)
		u, devs, err := s.store.UserDevices(ctx, cu.user.Username)
		if errors.Is(err, store.ErrNotFound) {
			return VerifyResult{Reason: ReasonNoDevice}, true, nil
		}
		if err != nil {
			return VerifyResult{}, true, err
		}
		if u.Disabled {
			return VerifyResult{Reason: ReasonDisabled}, true, nil
		}
		i := -1
		for j := range devs {
			if devs[j].ID == d.ID {
				i = j
			}
		}
		if i < 0 || devs[i].Status != store.StatusActive || !devs[i].HOTP {
			return VerifyResult{Reason: ReasonNoDevice}, true, nil
		}
		cur := devs[i]
		switch {
		case cur.LockedUntil.After(now):
			return lockedResult(cur.LockedUntil), true, nil
		case int64(m) < cur.Counter:
			s.Audit(ctx, a, "verify.replay", deviceTarget(cu.user, cur), ReasonReplay)
			return VerifyResult{Reason: ReasonReplay}, true, nil
		case int64(m) > cur.Counter+int64(s.cfg.HOTPLookAhead) || try > 0:
			// Beyond the window from the counter as it is now: not
			// accepted, but not a replay either.
			return VerifyResult{}, false, nil
		}
		d = cur
	}
}

// hotpReplay reports whether code is the code of one of the look-ahead
// window's counters just below d's counter: a code already accepted.
func (s *Core) hotpReplay(c candidate, code string) bool {
	from := max(c.dev.Counter-int64(s.cfg.HOTPLookAhead), 0)
	if c.dev.Counter <= from {
		return false
	}
	_, ok := enroll.VerifyHOTP(c.key, code, uint64(from), int(c.dev.Counter-1-from))
	return ok
}

// resyncCounter searches the HOTP resync window (Config.HOTPResyncWindow)
// from d's counter for two consecutive codes and moves the counter past
// the second, clearing failures and lock as a TOTP resync does.
func (s *Core) resyncCounter(ctx context.Context, a Actor, u store.User, d store.Device, codes []string) (store.Device, error) {
	k, err := s.openKey(d)
	if err != nil {
		return store.Device{}, err
	}
	m, ok := enroll.ResyncHOTP(k, codes[0], codes[1], uint64(d.Counter), s.cfg.HOTPResyncWindow)
	if !ok {
		s.Audit(ctx, a, "device.resync.fail", deviceTarget(u, d), "codes did not match")
		return store.Device{}, Fail(400, "these are not two codes in a row from this token within its next %d; press its button, type the code, press again and type the next one", s.cfg.HOTPResyncWindow)
	}
	use := store.CounterUse{DeviceID: d.ID, Old: d.Counter, New: int64(m) + 1, At: s.clock.Now().UTC(), Resync: true}
	if err := s.store.AdvanceCounter(ctx, use); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return store.Device{}, Fail(404, "no MFA device %d for user %q", d.ID, u.Username)
		}
		if errors.Is(err, store.ErrStale) {
			return store.Device{}, Fail(409, "a code of this token was accepted meanwhile; type two new consecutive codes")
		}
		return store.Device{}, err
	}
	s.userChanged(u.Username)
	s.Audit(ctx, a, "device.resync", deviceTarget(u, d), fmt.Sprintf("counter %d to %d", d.Counter, use.New))
	return s.store.Device(ctx, d.ID)
}
