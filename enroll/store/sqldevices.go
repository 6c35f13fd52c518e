package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

const deviceCols = `id, user_id, uid, name, kind, status, algorithm, digits, period_sec,
	secret_key_id, secret, created, registered, expires_at, last_used_step, last_used,
	drift_steps, fail_count, locked_until, lockouts, out_of_sync, drift_votes, ahead_steps, fail_at, hotp, counter`

func scanDevice(row rowScanner) (Device, error) {
	var d Device
	var kind, status string
	err := row.Scan(&d.ID, &d.UserID, &d.UID, &d.Name, &kind, &status, &d.Algorithm, &d.Digits, &d.PeriodSec,
		&d.Secret.KeyID, &d.Secret.Ciphertext, nullTime{&d.Created}, nullTime{&d.Registered}, nullTime{&d.ExpiresAt},
		&d.LastUsedStep, nullTime{&d.LastUsed}, &d.DriftSteps, &d.FailCount, nullTime{&d.LockedUntil},
		&d.Lockouts, &d.OutOfSync, &d.DriftVotes, aheadSteps{&d.AheadSteps}, nullTime{&d.FailAt}, &d.HOTP, &d.Counter)
	d.Kind, d.Status = DeviceKind(kind), DeviceStatus(status)
	return d, err
}

func (s *sqlStore) CreateDevice(ctx context.Context, d *Device) error {
	c, err := s.insertDevice(ctx, s.w, *d)
	if err != nil {
		return err
	}
	*d = c
	return nil
}

// insertDevice checks and inserts d through q (the write pool or a
// transaction) and returns it as stored: ID set, times in microseconds.
func (s *sqlStore) insertDevice(ctx context.Context, q querier, d Device) (Device, error) {
	switch {
	case d.Name == "":
		return Device{}, errors.New("create mfa device: empty name")
	case !d.Kind.valid():
		return Device{}, fmt.Errorf("create mfa device: unknown kind %q", d.Kind)
	case d.Status != StatusPending && d.Status != StatusActive:
		return Device{}, fmt.Errorf("create mfa device: unknown status %q", d.Status)
	case len(d.Secret.Ciphertext) == 0 || d.Secret.KeyID == "":
		return Device{}, errors.New("create mfa device: no sealed secret")
	}
	if d.UID == "" {
		d.UID = NewDeviceUID()
	}
	c := d
	if c.Created.IsZero() {
		c.Created = time.Now()
	}
	c.Created, c.Registered, c.ExpiresAt = micro(c.Created), micro(c.Registered), micro(c.ExpiresAt)
	c.LastUsed, c.LockedUntil, c.FailAt = micro(c.LastUsed), micro(c.LockedUntil), micro(c.FailAt)
	t := s.d.timeArg
	err := q.QueryRowContext(ctx, `INSERT INTO mfa_devices
		(user_id, uid, name, name_key, kind, status, algorithm, digits, period_sec, secret_key_id, secret,
		 created, registered, expires_at, last_used_step, last_used, drift_steps, fail_count, locked_until,
		 lockouts, out_of_sync, drift_votes, ahead_steps, fail_at, hotp, counter)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		c.UserID, c.UID, c.Name, fold(c.Name), string(c.Kind), string(c.Status), c.Algorithm, c.Digits, c.PeriodSec,
		c.Secret.KeyID, c.Secret.Ciphertext, t(c.Created), t(c.Registered), t(c.ExpiresAt), c.LastUsedStep,
		t(c.LastUsed), c.DriftSteps, c.FailCount, t(c.LockedUntil),
		c.Lockouts, c.OutOfSync, c.DriftVotes, formatAheadSteps(c.AheadSteps), t(c.FailAt), c.HOTP, c.Counter,
	).Scan(&c.ID)
	if err != nil {
		return Device{}, s.wrap("create mfa device", err)
	}
	return c, nil
}

func (s *sqlStore) Device(ctx context.Context, id int64) (Device, error) {
	d, err := scanDevice(s.r.QueryRowContext(ctx, `SELECT `+deviceCols+` FROM mfa_devices WHERE id = ?`, id))
	return d, s.wrap("mfa device", err)
}

func (s *sqlStore) DevicesByUser(ctx context.Context, userID int64) ([]Device, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+deviceCols+` FROM mfa_devices WHERE user_id = ? ORDER BY id`, userID)
	return collect(s, "mfa devices of user", rows, err, scanDevice)
}

func (s *sqlStore) RenameDevice(ctx context.Context, id int64, name string) error {
	res, err := s.exec(ctx, `UPDATE mfa_devices SET name = ?, name_key = ? WHERE id = ?`, name, fold(name), id)
	return s.affected("rename mfa device", res, err)
}

func (s *sqlStore) DeleteDevice(ctx context.Context, id int64) error {
	res, err := s.exec(ctx, `DELETE FROM mfa_devices WHERE id = ?`, id)
	return s.affected("delete mfa device", res, err)
}

// stale returns ErrStale when device id exists, else ErrNotFound: the
// reason a conditional update changed nothing.
func (s *sqlStore) stale(ctx context.Context, op string, id int64) error {
	var one int
	// Read from the read pool: the write connection stays free for the
	// next verify.
	err := s.r.QueryRowContext(ctx, `SELECT 1 FROM mfa_devices WHERE id = ?`, id).Scan(&one)
	if err != nil {
		return s.wrap(op, err)
	}
	return fmt.Errorf("%s: %w", op, ErrStale)
}

// conditional runs an UPDATE of one MFA device guarded by a WHERE clause;
// when it changes no row the result is ErrStale or ErrNotFound.
func (s *sqlStore) conditional(ctx context.Context, op string, id int64, query string, args ...any) error {
	n, err := changed(s.exec(ctx, query, args...))
	if err != nil {
		return s.wrap(op, err)
	}
	if n == 0 {
		return s.stale(ctx, op, id)
	}
	return nil
}

func (s *sqlStore) DeleteExpiredPending(ctx context.Context, now time.Time) ([]Device, error) {
	const op = "delete expired registrations"
	var devs []Device
	err := s.tx(ctx, op, func(t *txq) error {
		rows, err := t.tx.QueryContext(ctx, t.d.rebind(`DELETE FROM mfa_devices
			WHERE status = 'pending' AND expires_at IS NOT NULL AND expires_at < ? RETURNING `+deviceCols),
			s.d.timeArg(micro(now)))
		if devs, err = collect(s, op, rows, err, scanDevice); err != nil {
			return err
		}
		for _, d := range devs {
			if _, err := t.exec(ctx, `INSERT INTO expired_registrations (device_id, user_id, name, expires_at)
				VALUES (?, ?, ?, ?) ON CONFLICT (device_id) DO NOTHING`,
				d.ID, d.UserID, d.Name, s.d.timeArg(micro(d.ExpiresAt))); err != nil {
				return err
			}
		}
		_, err = t.exec(ctx, `DELETE FROM expired_registrations WHERE expires_at < ?`,
			s.d.timeArg(micro(now.Add(-ExpiredRegistrationMemory))))
		return err
	})
	if err != nil {
		return nil, err
	}
	// RETURNING gives no order; callers log them, so make it stable.
	slices.SortFunc(devs, func(a, b Device) int { return cmp.Compare(a.ID, b.ID) })
	return devs, nil
}

func (s *sqlStore) ExpiredRegistration(ctx context.Context, id int64) (Device, error) {
	d := Device{ID: id, Status: StatusPending}
	err := s.r.QueryRowContext(ctx, `SELECT user_id, name, expires_at FROM expired_registrations WHERE device_id = ?`, id).
		Scan(&d.UserID, &d.Name, nullTime{&d.ExpiresAt})
	return d, s.wrap("expired registration", err)
}

func (s *sqlStore) CountPending(ctx context.Context) (int, error) {
	var n int
	err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM mfa_devices WHERE status = 'pending'`).Scan(&n)
	return n, s.wrap("count pending registrations", err)
}
