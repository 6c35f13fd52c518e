package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// userEnabled is the condition, in an UPDATE of mfa_devices, that the
// device's user is not disabled: checked in the statement that accepts a
// code, so disabling a user on one server takes effect on every other at
// once.
const userEnabled = `EXISTS (SELECT 1 FROM users WHERE users.id = mfa_devices.user_id AND NOT users.disabled)`

// firstStep is the first step a use takes: $1 (the step) less $6 (how
// many steps before it were used with it: 1 for a resync's two codes).
const firstStep = `(CAST($1 AS BIGINT) - CAST($6 AS BIGINT))`

// stepText is $1, the step, as text (for ahead_steps).
const stepText = `CAST(CAST($1 AS BIGINT) AS TEXT)`

// stepUnused is the condition, in an UPDATE of mfa_devices, that the steps
// from firstStep to $1 are not used (see Device.Used): above
// last_used_step and in none of ahead_steps (",s1,s2,...,").
const stepUnused = `last_used_step < ` + firstStep + `
	AND ahead_steps NOT LIKE '%,' || ` + stepText + ` || ',%'
	AND ahead_steps NOT LIKE '%,' || CAST(` + firstStep + ` AS TEXT) || ',%'`

// recordStep is the SET part that records the steps firstStep to $1:
// in last_used_step, or each one in ahead_steps when $5, ahead of the
// server (see UseStep.Ahead).
const recordStep = `last_used_step = CASE WHEN $5 THEN last_used_step ELSE $1 END,
	ahead_steps = CASE WHEN $5 THEN
		(CASE WHEN ahead_steps = '' THEN ',' ELSE ahead_steps END)
		|| (CASE WHEN CAST($6 AS BIGINT) > 0 THEN CAST(` + firstStep + ` AS TEXT) || ',' ELSE '' END)
		|| ` + stepText + ` || ','
		ELSE ahead_steps END`

// numbered returns q, written with PostgreSQL's numbered $n parameters,
// for the store's dialect (SQLite spells them ?n).
func (s *sqlStore) numbered(q string) string {
	if _, ok := s.d.(sqliteDialect); ok {
		return strings.ReplaceAll(q, "$", "?")
	}
	return q
}

func (s *sqlStore) ActivateDevice(ctx context.Context, id int64, u UseStep) error {
	at := s.d.timeArg(micro(u.At))
	return s.conditional(ctx, "activate mfa device", id, s.numbered(`UPDATE mfa_devices
		SET status = 'active', registered = $2, expires_at = NULL, last_used_step = $1, last_used = $2,
			drift_steps = $3, drift_votes = 0, out_of_sync = $5, fail_count = 0, fail_at = NULL, lockouts = 0, locked_until = NULL,
			kind = CASE WHEN CAST($6 AS TEXT) = '' THEN kind ELSE CAST($6 AS TEXT) END
		WHERE id = $4 AND status = 'pending' AND (expires_at IS NULL OR expires_at > $2) AND last_used_step < $1
			AND `+userEnabled),
		u.Step, at, u.Drift, id, u.OutOfSync, string(u.Kind))
}

func (s *sqlStore) RecordUse(ctx context.Context, u UseStep) error {
	return s.conditional(ctx, recordUseOp, u.DeviceID, s.numbered(recordUseQuery), recordUseArgs(s, u)...)
}

func (s *sqlStore) RecordFailure(ctx context.Context, id int64, rule Lockout, now time.Time) (Failure, error) {
	now = micro(now)
	var f Failure
	err := s.tx(ctx, "record mfa device failure", func(t *txq) error {
		q := `SELECT fail_count, fail_at, lockouts, locked_until FROM mfa_devices WHERE id = ?`
		if _, ok := s.d.(postgresDialect); ok {
			q += ` FOR UPDATE`
		}
		var d Device
		if err := t.queryRow(ctx, q, id).Scan(&d.FailCount, nullTime{&d.FailAt}, &d.Lockouts, nullTime{&d.LockedUntil}); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return ErrNotFound
			}
			return err
		}
		f = Failure{Count: d.FailCount, FailAt: d.FailAt, Lockouts: d.Lockouts, LockedUntil: d.LockedUntil}
		if d.LockedUntil.After(now) {
			f.WasLocked = true
			return nil
		}
		f = rule.fail(d, now)
		_, err := t.exec(ctx, `UPDATE mfa_devices SET fail_count = ?, fail_at = ?, lockouts = ?, locked_until = ? WHERE id = ?`,
			f.Count, s.d.timeArg(f.FailAt), f.Lockouts, s.d.timeArg(f.LockedUntil), id)
		return err
	})
	if err != nil {
		return Failure{}, err
	}
	return f, nil
}

func (s *sqlStore) SetDrift(ctx context.Context, u UseStep) error {
	return s.conditional(ctx, "set mfa device drift", u.DeviceID, s.numbered(`UPDATE mfa_devices
		SET `+recordStep+`, last_used = $2, drift_steps = $3, drift_votes = 0, out_of_sync = FALSE,
			fail_count = 0, fail_at = NULL, lockouts = 0, locked_until = NULL
		WHERE id = $4 AND `+stepUnused),
		u.Step, s.d.timeArg(micro(u.At)), u.Drift, u.DeviceID, u.Ahead, 1)
}

func (s *sqlStore) FoldAheadSteps(ctx context.Context, id int64, upTo int64) error {
	const op = "fold mfa device steps used ahead"
	return s.tx(ctx, op, func(t *txq) error {
		q := `SELECT last_used_step, ahead_steps FROM mfa_devices WHERE id = ?`
		if _, ok := s.d.(postgresDialect); ok {
			q += ` FOR UPDATE`
		}
		var last int64
		var ahead []int64
		switch err := t.tx.QueryRowContext(ctx, t.d.rebind(q), id).Scan(&last, aheadSteps{&ahead}); {
		case errors.Is(err, sql.ErrNoRows):
			return ErrNotFound
		case err != nil:
			return err
		}
		keep := ahead[:0:0]
		for _, a := range ahead {
			switch {
			case a > upTo:
				keep = append(keep, a)
			case a > last:
				last = a
			}
		}
		if len(keep) == len(ahead) {
			return nil
		}
		_, err := t.exec(ctx, `UPDATE mfa_devices SET last_used_step = ?, ahead_steps = ? WHERE id = ?`,
			last, formatAheadSteps(keep), id)
		return err
	})
}

// aheadSteps scans ahead_steps (",s1,s2,...,", or empty) into a sorted
// list of steps.
type aheadSteps struct{ p *[]int64 }

func (a aheadSteps) Scan(v any) error {
	var text string
	switch v := v.(type) {
	case nil:
	case string:
		text = v
	case []byte:
		text = string(v)
	default:
		return fmt.Errorf("ahead_steps: unexpected %T", v)
	}
	var out []int64
	for f := range strings.SplitSeq(text, ",") {
		if f == "" {
			continue
		}
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return fmt.Errorf("ahead_steps: %q is not a step", f)
		}
		out = append(out, n)
	}
	slices.Sort(out)
	*a.p = slices.Compact(out)
	return nil
}

// formatAheadSteps is the ahead_steps text of steps.
func formatAheadSteps(steps []int64) string {
	if len(steps) == 0 {
		return ""
	}
	var b strings.Builder
	for _, n := range steps {
		b.WriteByte(',')
		b.WriteString(strconv.FormatInt(n, 10))
	}
	b.WriteByte(',')
	return b.String()
}

func (s *sqlStore) UnlockDevice(ctx context.Context, id int64, lockedUntil time.Time) error {
	const op = "unlock mfa device"
	q := `UPDATE mfa_devices SET fail_count = 0, fail_at = NULL, lockouts = 0, locked_until = NULL WHERE id = ? AND `
	if lockedUntil.IsZero() {
		return s.conditional(ctx, op, id, q+`locked_until IS NULL`, id)
	}
	return s.conditional(ctx, op, id, q+`locked_until = ?`, id, s.d.timeArg(micro(lockedUntil)))
}

func (s *sqlStore) ClearExpiredLockout(ctx context.Context, id int64, now time.Time) error {
	return s.conditional(ctx, "clear expired lockout", id, `UPDATE mfa_devices SET locked_until = NULL
		WHERE id = ? AND locked_until IS NOT NULL AND locked_until <= ?`, id, s.d.timeArg(micro(now)))
}

func (s *sqlStore) ClearExpiredLockouts(ctx context.Context, now time.Time) ([]Device, error) {
	rows, err := s.w.QueryContext(ctx, `UPDATE mfa_devices SET locked_until = NULL
		WHERE locked_until IS NOT NULL AND locked_until <= ? RETURNING `+deviceCols,
		s.d.timeArg(micro(now)))
	devs, err := collect(s, "clear expired lockouts", rows, err, scanDevice)
	slices.SortFunc(devs, func(a, b Device) int { return cmp.Compare(a.ID, b.ID) })
	return devs, err
}
