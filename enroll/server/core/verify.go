package core

import (
	"context"
	"errors"
	"fmt"
	"slices"
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

// The drift rule. A verify moves a device's learned drift only when codes
// keep matching on one side of it: DriftVotes verifies in a row, then one
// step, and never beyond DriftWalkLimit steps from zero (a drift beyond
// it, set by a resync, may only walk back toward zero). A single code at
// the window's edge is accepted and moves nothing. A resync sets the
// drift at once, within the resync window.
const (
	DriftVotes     = 3
	DriftWalkLimit = 10
)

// LateSteps is how many steps before the window a registration code may
// be (5 minutes at 30 s) and still register the device, marked out of
// sync.
const LateSteps = 10

// nextDrift returns the drift and drift votes after a verify of device d
// matched step at offset steps from the server's step.
func nextDrift(d store.Device, offset int64) (drift int64, votes int) {
	e := offset - d.DriftSteps
	if e == 0 {
		return d.DriftSteps, 0
	}
	sign := 1
	if e < 0 {
		sign = -1
	}
	votes = sign
	if d.DriftVotes*sign > 0 {
		votes = d.DriftVotes + sign
	}
	if votes*sign < DriftVotes {
		return d.DriftSteps, votes
	}
	next := d.DriftSteps + int64(sign)
	if abs(next) > DriftWalkLimit && abs(next) >= abs(d.DriftSteps) {
		return d.DriftSteps, 0
	}
	return next, 0
}

func abs(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}

// verifyOptions returns how a code is searched for on d: around its
// drift and around zero, refusing its used steps.
func verifyOptions(d store.Device, window int) enroll.VerifyOptions {
	return enroll.VerifyOptions{Window: window, Drift: d.DriftSteps, LastUsed: d.LastUsedStep,
		UsedAhead: d.AheadSteps, AlsoZero: true}
}

// Verify checks code against the active MFA devices of username at the
// clock's now. A match is recorded with one conditional update, written in
// one transaction with those of concurrent verifies (store.UseBatcher),
// which also checks that the user is enabled and the device active and
// not locked, so a code is accepted at most once however many requests
// carry it and a change made by another server counts at once. The
// learned drift follows the drift rule (DriftVotes). A miss counts a
// failure on each device tried and locks a device at the threshold. A
// code refused because the device is locked is answered as locked,
// whatever the code. ip is the end user's address for the per-address
// limit. It returns a Failure (404) for an unknown user.
func (s *Core) Verify(ctx context.Context, a Actor, username, code, ip string) (res VerifyResult, err error) {
	// A user checks their own code at sign-in; anyone else needs the
	// verify role.
	if a.Name != username {
		if err := Allow(a, OpVerify); err != nil {
			return VerifyResult{}, err
		}
	}
	defer func() { s.metrics.verified(res, err) }()
	now := s.clock.Now()
	if ok, wait := s.verifyIP.Allow(ip, now); !ok {
		return VerifyResult{Reason: ReasonRateLimited, RetryAfter: wait}, nil
	}
	cu, wait, err := s.limitedUserDevices(ctx, username, now)
	if err != nil {
		return VerifyResult{}, err
	}
	if cu == nil {
		return VerifyResult{Reason: ReasonRateLimited, RetryAfter: wait}, nil
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
		return lockedResult(lockedUntil), nil
	}
	if res, matched, err := s.acceptMatch(ctx, a, cu, cands, code, now, st); matched || err != nil {
		if res.OK && err == nil {
			s.verifyCounts.add(cu.user.ID, now, 1, 0, 0)
		}
		return res, err
	}
	if res, replay := s.isReplay(ctx, a, cu, cands, code, now, st); replay {
		return res, nil
	}
	allLocked, lockedUntil, err := s.countFailure(ctx, a, cu, cands, now, st)
	if err != nil {
		return VerifyResult{}, err
	}
	if allLocked {
		// Locked by another server meanwhile: answered as locked, as a
		// right code would be.
		return lockedResult(lockedUntil), nil
	}
	s.Audit(ctx, a, "verify.fail", "user:"+cu.user.Username, ReasonInvalid)
	s.verifyCounts.add(cu.user.ID, now, 0, 1, 0)
	return VerifyResult{Reason: ReasonInvalid}, nil
}

// limitedUserDevices takes a token from username's verify limit and, when
// it got one, returns the user with their active devices (userDevices);
// when the limit refused it returns nil and how long until a token is
// back. A user not cached, with the limit's buckets in the store
// (PostgreSQL), is read in the statement that takes the token: one round
// trip and one commit instead of two.
func (s *Core) limitedUserDevices(ctx context.Context, username string, now time.Time) (*cachedUser, time.Duration, error) {
	if sh := s.verifyUserShared; sh != nil && s.cache.fresh(username, now) == nil {
		if scope, r, off := sh.Bucket(); !off {
			t := store.TokenTake{Scope: scope, Key: username, PerSecond: r.PerSecond, Burst: r.Burst, Now: now}
			took, left, u, all, err := s.buckets.TakeTokenUserDevices(ctx, t, username)
			if err == nil && !took {
				_, wait := sh.Answer(took, left)
				return nil, wait, nil
			}
			cu, err := s.cacheUser(username, u, all, now, err)
			return cu, 0, err
		}
	}
	if ok, wait := s.verifyUser.Allow(username, now); !ok {
		return nil, wait, nil
	}
	cu, err := s.userDevices(ctx, username)
	return cu, 0, err
}

// lockedResult is the answer to a code tried while every device is
// locked, the earliest lock ending at until.
func lockedResult(until time.Time) VerifyResult {
	if !until.Before(store.Indefinitely) {
		return VerifyResult{Reason: ReasonLocked + "; ask an admin to unlock it"}
	}
	return VerifyResult{Reason: fmt.Sprintf("%s; try again after %s", ReasonLocked, until.UTC().Format(TimeLayout))}
}

// candidate is an MFA device a code is tried against: the i-th of the
// cached user's devices, with its key.
type candidate struct {
	i   int
	dev store.Device
	key enroll.Key
}

// unlockedDevices takes a snapshot of cu's devices that are not locked at
// now, clearing lockouts whose time is up (only while the lock is the one
// the snapshot saw run out); when every device is locked it returns none
// and the earliest end of a lockout.
func (s *Core) unlockedDevices(ctx context.Context, cu *cachedUser, now time.Time) ([]candidate, time.Time, error) {
	var cands []candidate
	var lockedUntil time.Time
	locked := func(until time.Time) {
		if lockedUntil.IsZero() || until.Before(lockedUntil) {
			lockedUntil = until
		}
	}
	cu.mu.Lock()
	devs := append([]store.Device(nil), cu.devices...)
	keys := cu.keys
	cu.mu.Unlock()
	for i, d := range devs {
		if !d.LockedUntil.IsZero() {
			if d.LockedUntil.After(now) {
				locked(d.LockedUntil)
				continue
			}
			err := s.Atomic(ctx, func(ctx context.Context) error {
				if err := s.store.ClearExpiredLockout(ctx, d.ID, now); err != nil {
					return err
				}
				s.Audit(ctx, System, "device.unlock", deviceTarget(cu.user, d), "lockout expired")
				return nil
			})
			switch {
			case err == nil:
				d.LockedUntil = time.Time{}
				cu.setDevice(i, d)
			case errors.Is(err, store.ErrStale):
				// Cleared meanwhile, or locked again by another server.
				s.cache.invalidate(cu.key)
				cur, err := s.store.Device(ctx, d.ID)
				if err != nil && !errors.Is(err, store.ErrNotFound) {
					return nil, time.Time{}, err
				}
				if err != nil || cur.Status != store.StatusActive {
					continue
				}
				if cur.LockedUntil.After(now) {
					locked(cur.LockedUntil)
					continue
				}
				d = cur
			case errors.Is(err, store.ErrNotFound):
				s.cache.invalidate(cu.key)
				continue
			default:
				return nil, time.Time{}, err
			}
		}
		cands = append(cands, candidate{i, d, keys[i]})
	}
	return cands, lockedUntil, nil
}

// acceptMatch records the first candidate code matches, if any: matched
// is false when none does. A match that loses the conditional update is
// answered by what the store holds now (see refusedUse).
func (s *Core) acceptMatch(ctx context.Context, a Actor, cu *cachedUser, cands []candidate, code string, now time.Time, st Settings) (VerifyResult, bool, error) {
	for _, c := range cands {
		if c.dev.HOTP {
			if res, matched, err := s.acceptCounter(ctx, a, cu, c, code, now); matched || err != nil {
				return res, true, err
			}
			continue
		}
		step, ok := enroll.Verify(c.key, code, now, verifyOptions(c.dev, st.VerifyWindow))
		if !ok {
			continue
		}
		nowStep := enroll.Step(c.key, now)
		drift, votes := nextDrift(c.dev, step-nowStep)
		use := store.UseStep{DeviceID: c.dev.ID, Step: step, Drift: drift, DriftVotes: votes, At: now.UTC(),
			Ahead: step > nowStep+int64(st.VerifyWindow)}
		err := s.uses.RecordUse(ctx, use)
		switch {
		case err == nil:
			d := c.dev
			if use.Ahead {
				d.AheadSteps = append(slices.Clone(d.AheadSteps), step)
				slices.Sort(d.AheadSteps)
			} else {
				d.LastUsedStep = step
			}
			d.DriftSteps, d.DriftVotes, d.LastUsed = use.Drift, use.DriftVotes, use.At
			d = s.foldAhead(ctx, d, nowStep+int64(st.VerifyWindow))
			cu.setDevice(c.i, d)
			if drift != c.dev.DriftSteps {
				s.Audit(ctx, a, "device.drift", deviceTarget(cu.user, c.dev), fmt.Sprintf("drift %+ds after %d codes in a row on one side", drift*int64(c.dev.PeriodSec), DriftVotes))
			}
			return VerifyResult{OK: true, DeviceID: c.dev.ID}, true, nil
		case errors.Is(err, store.ErrStale), errors.Is(err, store.ErrNotFound):
			res, err := s.refusedUse(ctx, a, cu, c.dev.ID, step, now)
			return res, true, err
		default:
			return VerifyResult{}, true, err
		}
	}
	return VerifyResult{}, false, nil
}

// refusedUse says why the store refused to accept step on device id, from
// what it holds now: the user disabled, the device gone or locked (a
// change made meanwhile, maybe by another server), or the step used (a
// replay). A locked device is answered as locked, never as a replay.
func (s *Core) refusedUse(ctx context.Context, a Actor, cu *cachedUser, id, step int64, now time.Time) (VerifyResult, error) {
	s.cache.invalidate(cu.key)
	u, devs, err := s.store.UserDevices(ctx, cu.user.Username)
	if errors.Is(err, store.ErrNotFound) {
		return VerifyResult{Reason: ReasonNoDevice}, nil
	}
	if err != nil {
		return VerifyResult{}, err
	}
	if u.Disabled {
		return VerifyResult{Reason: ReasonDisabled}, nil
	}
	for _, d := range devs {
		if d.ID != id {
			continue
		}
		if d.LockedUntil.After(now) {
			return lockedResult(d.LockedUntil), nil
		}
		if d.Status == store.StatusActive && d.Used(step) {
			s.Audit(ctx, a, "verify.replay", deviceTarget(cu.user, d), ReasonReplay)
			return VerifyResult{Reason: ReasonReplay}, nil
		}
	}
	return VerifyResult{Reason: ReasonNoDevice}, nil
}

// isReplay reports whether code was already accepted on a candidate: a
// replay, not a guess, refused without counting a failure. The device is
// read again first, so one locked meanwhile is answered as locked.
func (s *Core) isReplay(ctx context.Context, a Actor, cu *cachedUser, cands []candidate, code string, now time.Time, st Settings) (VerifyResult, bool) {
	for _, c := range cands {
		if c.dev.HOTP {
			if s.hotpReplay(c, code) {
				s.Audit(ctx, a, "verify.replay", deviceTarget(cu.user, c.dev), ReasonReplay)
				return VerifyResult{Reason: ReasonReplay}, true
			}
			continue
		}
		opts := verifyOptions(c.dev, st.VerifyWindow)
		opts.LastUsed, opts.UsedAhead = -1, nil
		if step, ok := enroll.Verify(c.key, code, now, opts); ok && c.dev.Used(step) {
			res, err := s.refusedUse(ctx, a, cu, c.dev.ID, step, now)
			if err != nil {
				s.log.Error("verify: read device state", "err", err)
				return VerifyResult{Reason: ReasonReplay}, true
			}
			return res, true
		}
	}
	return VerifyResult{}, false
}

// countFailure counts a failed code on every candidate, locking those
// that reach the threshold. allLocked reports that every candidate was
// already locked in the store (by another server meanwhile), the
// earliest lock ending at until.
func (s *Core) countFailure(ctx context.Context, a Actor, cu *cachedUser, cands []candidate, now time.Time, st Settings) (allLocked bool, until time.Time, err error) {
	allLocked = true
	for _, c := range cands {
		// A failure that locks the device is recorded with its audit
		// and outbox rows, in one transaction.
		var f store.Failure
		err := s.Atomic(ctx, func(ctx context.Context) error {
			var err error
			if f, err = s.store.RecordFailure(ctx, c.dev.ID, st.Lockout(), now.UTC()); err != nil || !f.Locked {
				return err
			}
			lock := "until unlocked"
			if !f.LockedUntil.Equal(store.Indefinitely) {
				lock = "until " + f.LockedUntil.Format(TimeLayout)
			}
			s.Audit(ctx, a, "device.lock", deviceTarget(cu.user, c.dev), fmt.Sprintf("locked after %d failed codes (lockout %d in a row) %s", f.Count, f.Lockouts, lock))
			return nil
		})
		if errors.Is(err, store.ErrNotFound) {
			s.cache.invalidate(cu.key)
			continue
		}
		if err != nil {
			return false, time.Time{}, err
		}
		d := c.dev
		d.FailCount, d.FailAt, d.Lockouts, d.LockedUntil = f.Count, f.FailAt, f.Lockouts, f.LockedUntil
		if f.WasLocked {
			if until.IsZero() || f.LockedUntil.Before(until) {
				until = f.LockedUntil
			}
		} else {
			allLocked = false
		}
		if f.Locked {
			s.metrics.lockouts.Inc()
			s.verifyCounts.add(cu.user.ID, now, 0, 0, 1)
			s.log.Warn("MFA device locked", "user", cu.user.Username, "device", c.dev.ID, "failures", f.Count, "lockouts", f.Lockouts)
		}
		cu.setDevice(c.i, d)
	}
	return allLocked && !until.IsZero(), until, nil
}

// foldAhead folds the steps d used ahead that the server's clock has
// reached (at or below upTo) into its last-used step, in the store and in
// the copy it returns, so the steps kept apart stay few: only those still
// ahead. A failure to fold is logged and changes nothing (the steps stay
// used either way).
func (s *Core) foldAhead(ctx context.Context, d store.Device, upTo int64) store.Device {
	if len(d.AheadSteps) == 0 || d.AheadSteps[0] > upTo {
		return d
	}
	if err := s.store.FoldAheadSteps(ctx, d.ID, upTo); err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			s.log.Error("verify: fold steps used ahead", "device", d.ID, "err", err)
		}
		return d
	}
	var keep []int64
	for _, a := range d.AheadSteps {
		if a > upTo {
			keep = append(keep, a)
		} else {
			d.LastUsedStep = max(d.LastUsedStep, a)
		}
	}
	d.AheadSteps = keep
	return d
}

// setDevice replaces the cached copy of device i after a change the server
// made itself, unless the copy already knows of a used step d does not.
func (cu *cachedUser) setDevice(i int, d store.Device) {
	cu.mu.Lock()
	if i < len(cu.devices) && cu.devices[i].ID == d.ID && d.LastUsedStep >= cu.devices[i].LastUsedStep && d.Counter >= cu.devices[i].Counter &&
		!slices.ContainsFunc(cu.devices[i].AheadSteps, func(a int64) bool { return !d.Used(a) }) {
		cu.devices[i] = d
	}
	cu.mu.Unlock()
}
