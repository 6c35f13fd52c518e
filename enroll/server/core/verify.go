package core

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/totpbox/totpbox/enroll"
	"github.com/totpbox/totpbox/enroll/store"
)

// VerifyResult is the outcome of checking a user's code.
type VerifyResult struct {
	OK       bool
	DeviceID int64
	// Reason says why a code was refused; it never holds the code.
	Reason string
	// RetryAfter is set when a rate limit refused the attempt.
	RetryAfter time.Duration
}

// Reasons a code is refused.
const (
	ReasonInvalid     = "invalid code"
	ReasonReplay      = "code already used"
	ReasonNoDevice    = "no active MFA device"
	ReasonDisabled    = "user is disabled"
	ReasonLocked      = "MFA device locked after too many failed codes"
	ReasonRateLimited = "too many attempts; retry later"
)

// Verify checks code against the active MFA devices of username at the
// clock's now. A match is recorded with one conditional update, written in
// one transaction with those of concurrent verifies (store.UseBatcher), so
// a code is accepted at most once however many requests carry it; the
// learned drift follows the match. A miss counts a failure on each device
// tried and locks a device at the threshold. ip is the end user's address
// for the per-address limit. It returns a Failure (404) for an unknown
// user.
func (s *Core) Verify(ctx context.Context, a Actor, username, code, ip string) (res VerifyResult, err error) {
	defer func() { s.metrics.verified(res, err) }()
	now := s.clock.Now()
	if ok, wait := s.verifyIP.Allow(ip, now); !ok {
		return VerifyResult{Reason: ReasonRateLimited, RetryAfter: wait}, nil
	}
	if ok, wait := s.verifyUser.Allow(username, now); !ok {
		return VerifyResult{Reason: ReasonRateLimited, RetryAfter: wait}, nil
	}
	cu, err := s.userDevices(ctx, username)
	if err != nil {
		return VerifyResult{}, err
	}
	if cu.user.Disabled {
		return VerifyResult{Reason: ReasonDisabled}, nil
	}
	if len(cu.devices) == 0 {
		return VerifyResult{Reason: ReasonNoDevice}, nil
	}
	st, err := s.settings.get(ctx)
	if err != nil {
		return VerifyResult{}, err
	}
	cands, lockedUntil, err := s.unlockedDevices(ctx, cu, now)
	if err != nil {
		return VerifyResult{}, err
	}
	if len(cands) == 0 {
		return VerifyResult{Reason: fmt.Sprintf("%s; try again after %s", ReasonLocked, lockedUntil.UTC().Format(TimeLayout))}, nil
	}
	if res, matched, err := s.acceptMatch(ctx, a, cu, cands, code, now, st); matched || err != nil {
		return res, err
	}
	if s.isReplay(ctx, a, cu, cands, code, now, st) {
		return VerifyResult{Reason: ReasonReplay}, nil
	}
	if err := s.countFailure(ctx, a, cu, cands, now, st); err != nil {
		return VerifyResult{}, err
	}
	s.Audit(ctx, a, "verify.fail", "user:"+cu.user.Username, ReasonInvalid)
	return VerifyResult{Reason: ReasonInvalid}, nil
}

// candidate is an MFA device a code is tried against: the i-th of the
// cached user's devices, with its key.
type candidate struct {
	i   int
	dev store.Device
	key enroll.Key
}

// unlockedDevices takes a snapshot of cu's devices that are not locked at
// now, clearing lockouts whose time is up; when every device is locked it
// returns none and the earliest end of a lockout.
func (s *Core) unlockedDevices(ctx context.Context, cu *cachedUser, now time.Time) ([]candidate, time.Time, error) {
	var cands []candidate
	var lockedUntil time.Time
	cu.mu.Lock()
	devs := append([]store.Device(nil), cu.devices...)
	keys := cu.keys
	cu.mu.Unlock()
	for i, d := range devs {
		if !d.LockedUntil.IsZero() {
			if d.LockedUntil.After(now) {
				if lockedUntil.IsZero() || d.LockedUntil.Before(lockedUntil) {
					lockedUntil = d.LockedUntil
				}
				continue
			}
			if err := s.store.UnlockDevice(ctx, d.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
				return nil, time.Time{}, err
			}
			s.Audit(ctx, System, "device.unlock", deviceTarget(cu.user, d), "lockout expired")
			d.LockedUntil, d.FailCount = time.Time{}, 0
			cu.setDevice(i, d)
		}
		cands = append(cands, candidate{i, d, keys[i]})
	}
	return cands, lockedUntil, nil
}

// acceptMatch records the first candidate code matches, if any: matched
// is false when none does. A match that loses the conditional update is a
// replay.
func (s *Core) acceptMatch(ctx context.Context, a Actor, cu *cachedUser, cands []candidate, code string, now time.Time, st Settings) (VerifyResult, bool, error) {
	for _, c := range cands {
		opts := enroll.VerifyOptions{Window: st.VerifyWindow, Drift: c.dev.DriftSteps, LastUsed: c.dev.LastUsedStep}
		step, ok := enroll.Verify(c.key, code, now, opts)
		if !ok {
			continue
		}
		use := store.UseStep{DeviceID: c.dev.ID, Step: step, Drift: step - enroll.Step(c.key, now), At: now.UTC()}
		err := s.uses.RecordUse(ctx, use)
		switch {
		case err == nil:
			d := c.dev
			d.LastUsedStep, d.DriftSteps, d.LastUsed, d.FailCount = use.Step, use.Drift, use.At, 0
			cu.setDevice(c.i, d)
			return VerifyResult{OK: true, DeviceID: c.dev.ID}, true, nil
		case errors.Is(err, store.ErrStale), errors.Is(err, store.ErrNotFound):
			// Used meanwhile by another request, or the device changed:
			// read it again next time.
			s.cache.invalidate(cu.key)
			s.Audit(ctx, a, "verify.replay", deviceTarget(cu.user, c.dev), ReasonReplay)
			return VerifyResult{Reason: ReasonReplay}, true, nil
		default:
			return VerifyResult{}, true, err
		}
	}
	return VerifyResult{}, false, nil
}

// isReplay reports whether code was already accepted on a candidate: a
// replay, not a guess, refused without counting a failure.
func (s *Core) isReplay(ctx context.Context, a Actor, cu *cachedUser, cands []candidate, code string, now time.Time, st Settings) bool {
	for _, c := range cands {
		opts := enroll.VerifyOptions{Window: st.VerifyWindow, Drift: c.dev.DriftSteps, LastUsed: -1}
		if step, ok := enroll.Verify(c.key, code, now, opts); ok && step <= c.dev.LastUsedStep {
			s.Audit(ctx, a, "verify.replay", deviceTarget(cu.user, c.dev), ReasonReplay)
			return true
		}
	}
	return false
}

// countFailure counts a failed code on every candidate, locking those
// that reach the threshold.
func (s *Core) countFailure(ctx context.Context, a Actor, cu *cachedUser, cands []candidate, now time.Time, st Settings) error {
	lockAt := now.Add(st.LockoutClear).UTC()
	for _, c := range cands {
		n, err := s.store.RecordFailure(ctx, c.dev.ID, st.LockoutThreshold, lockAt)
		if errors.Is(err, store.ErrNotFound) {
			s.cache.invalidate(cu.key)
			continue
		}
		if err != nil {
			return err
		}
		d := c.dev
		d.FailCount = n
		if n >= st.LockoutThreshold {
			d.LockedUntil = lockAt
			if c.dev.FailCount < st.LockoutThreshold {
				s.metrics.lockouts.Inc()
				s.Audit(ctx, a, "device.lock", deviceTarget(cu.user, c.dev), fmt.Sprintf("locked after %d failed codes until %s", n, lockAt.Format(TimeLayout)))
				s.log.Warn("MFA device locked", "user", cu.user.Username, "device", c.dev.ID, "failures", n)
			}
		}
		cu.setDevice(c.i, d)
	}
	return nil
}

// setDevice replaces the cached copy of device i after a change the server
// made itself.
func (cu *cachedUser) setDevice(i int, d store.Device) {
	cu.mu.Lock()
	if i < len(cu.devices) && cu.devices[i].ID == d.ID && d.LastUsedStep >= cu.devices[i].LastUsedStep {
		cu.devices[i] = d
	}
	cu.mu.Unlock()
}
