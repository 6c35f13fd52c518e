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
// learned drift follows the match. A miss counts a failure on each device tried
// and locks a device at the threshold. ip is the end user's address for
// the per-address limit. It returns a failure (404) for an unknown user.
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

	// Take a snapshot of the devices that are not locked, clearing lockouts
	// whose time is up.
	type candidate struct {
		i   int
		dev store.Device
		key enroll.Key
	}
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
				return VerifyResult{}, err
			}
			s.Audit(ctx, System, "device.unlock", deviceTarget(cu.user, d), "lockout expired")
			d.LockedUntil, d.FailCount = time.Time{}, 0
			cu.setDevice(i, d)
		}
		cands = append(cands, candidate{i, d, keys[i]})
	}
	if len(cands) == 0 {
		return VerifyResult{Reason: fmt.Sprintf("%s; try again after %s", ReasonLocked, lockedUntil.UTC().Format(TimeLayout))}, nil
	}

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
			return VerifyResult{OK: true, DeviceID: c.dev.ID}, nil
		case errors.Is(err, store.ErrStale), errors.Is(err, store.ErrNotFound):
			// Used meanwhile by another request, or the device changed:
			// read it again next time.
			s.cache.invalidate(username)
			s.Audit(ctx, a, "verify.replay", deviceTarget(cu.user, c.dev), ReasonReplay)
			return VerifyResult{Reason: ReasonReplay}, nil
		default:
			return VerifyResult{}, err
		}
	}

	// A code already accepted is a replay, not a guess: refuse it without
	// counting a failure.
	for _, c := range cands {
		opts := enroll.VerifyOptions{Window: st.VerifyWindow, Drift: c.dev.DriftSteps, LastUsed: -1}
		if step, ok := enroll.Verify(c.key, code, now, opts); ok && step <= c.dev.LastUsedStep {
			s.Audit(ctx, a, "verify.replay", deviceTarget(cu.user, c.dev), ReasonReplay)
			return VerifyResult{Reason: ReasonReplay}, nil
		}
	}

	lockAt := now.Add(st.LockoutClear).UTC()
	for _, c := range cands {
		n, err := s.store.RecordFailure(ctx, c.dev.ID, st.LockoutThreshold, lockAt)
		if errors.Is(err, store.ErrNotFound) {
			s.cache.invalidate(username)
			continue
		}
		if err != nil {
			return VerifyResult{}, err
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
	s.Audit(ctx, a, "verify.fail", "user:"+cu.user.Username, ReasonInvalid)
	return VerifyResult{Reason: ReasonInvalid}, nil
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
