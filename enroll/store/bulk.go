package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// BulkCreator creates many users with their MFA devices in one
// transaction: a large directory import, or the tens of thousands of users
// a benchmark seeds, in seconds rather than a commit per row.
// The SQL stores implement it.
type BulkCreator interface {
	// CreateUsersDevices creates users[i] and devices[i] (the user's MFA
	// devices, their UserID set here) for every i, setting IDs and
	// Created as CreateUser and CreateDevice do; all or nothing. Devices
	// may be pending or active, with their use fields (LastUsedStep,
	// Registered, ...) as given. seal, when not nil, is called on each
	// device once its UserID is set and before it is written: a secret
	// is sealed to its device's user (Sealer.SealDevice).
	CreateUsersDevices(ctx context.Context, users []User, devices [][]Device, seal func(d *Device) error) error
}

var _ BulkCreator = (*sqlStore)(nil)

func (s *sqlStore) CreateUsersDevices(ctx context.Context, users []User, devices [][]Device, seal func(d *Device) error) error {
	const op = "create users with mfa devices"
	if len(devices) != len(users) {
		return fmt.Errorf("%s: %d users, %d device lists", op, len(users), len(devices))
	}
	tx, err := s.w.db.BeginTx(ctx, nil)
	if err != nil {
		return s.wrap(op, err)
	}
	defer tx.Rollback()
	userStmt, err := tx.PrepareContext(ctx, s.d.rebind(`INSERT INTO users
		(username, username_key, display_name, email, password_hash, admin, disabled, created)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`))
	if err != nil {
		return s.wrap(op, err)
	}
	defer userStmt.Close()
	devStmt, err := tx.PrepareContext(ctx, s.d.rebind(`INSERT INTO mfa_devices
		(user_id, uid, name, name_key, kind, status, algorithm, digits, period_sec, secret_key_id, secret,
		 created, registered, expires_at, last_used_step, last_used, drift_steps, fail_count, locked_until,
		 lockouts, out_of_sync, drift_votes, ahead_steps, fail_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`))
	if err != nil {
		return s.wrap(op, err)
	}
	defer devStmt.Close()
	t := s.d.timeArg
	now := time.Now()
	for i := range users {
		u := &users[i]
		if u.Username == "" {
			return fmt.Errorf("%s: user %d: empty username", op, i)
		}
		if u.Created.IsZero() {
			u.Created = now
		}
		u.Created = micro(u.Created)
		if err := userStmt.QueryRowContext(ctx, u.Username, fold(u.Username), u.DisplayName, u.Email,
			u.PasswordHash, u.Admin, u.Disabled, t(u.Created)).Scan(&u.ID); err != nil {
			return s.wrap(op, err)
		}
		for j := range devices[i] {
			d := &devices[i][j]
			d.UserID = u.ID
			if seal != nil {
				if err := seal(d); err != nil {
					return fmt.Errorf("%s: user %q: %w", op, u.Username, err)
				}
			}
			switch {
			case d.Name == "":
				return fmt.Errorf("%s: user %q: mfa device with an empty name", op, u.Username)
			case !d.Kind.valid():
				return fmt.Errorf("%s: user %q: unknown kind %q", op, u.Username, d.Kind)
			case d.Status != StatusPending && d.Status != StatusActive:
				return fmt.Errorf("%s: user %q: unknown status %q", op, u.Username, d.Status)
			case len(d.Secret.Ciphertext) == 0 || d.Secret.KeyID == "":
				return errors.New(op + ": mfa device without a sealed secret")
			}
			if d.UID == "" {
				d.UID = NewDeviceUID()
			}
			if d.Created.IsZero() {
				d.Created = now
			}
			d.Created, d.Registered, d.ExpiresAt = micro(d.Created), micro(d.Registered), micro(d.ExpiresAt)
			d.LastUsed, d.LockedUntil, d.FailAt = micro(d.LastUsed), micro(d.LockedUntil), micro(d.FailAt)
			if err := devStmt.QueryRowContext(ctx,
				d.UserID, d.UID, d.Name, fold(d.Name), string(d.Kind), string(d.Status), d.Algorithm, d.Digits, d.PeriodSec,
				d.Secret.KeyID, d.Secret.Ciphertext, t(d.Created), t(d.Registered), t(d.ExpiresAt), d.LastUsedStep,
				t(d.LastUsed), d.DriftSteps, d.FailCount, t(d.LockedUntil),
				d.Lockouts, d.OutOfSync, d.DriftVotes, formatAheadSteps(d.AheadSteps), t(d.FailAt)).Scan(&d.ID); err != nil {
				return s.wrap(op, err)
			}
		}
	}
	return s.wrap(op, tx.Commit())
}
