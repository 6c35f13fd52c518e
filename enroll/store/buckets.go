package store

import (
	"context"
	"database/sql"
	"time"
)

// RateBuckets is implemented by stores several server replicas share
// (PostgreSQL): token buckets every replica takes from, so a limit holds
// for the whole fleet. SQLite does not implement it; its one server keeps
// its limits in memory.
type RateBuckets interface {
	// TakeToken refills the bucket (scope, key) at perSecond up to burst
	// for the time since it was last used, and takes one token when it
	// holds one, in one atomic statement. It reports whether a token was
	// taken and the tokens left.
	TakeToken(ctx context.Context, scope, key string, perSecond float64, burst int, now time.Time) (ok bool, left float64, err error)
	// DeleteIdleBuckets removes buckets not used since before, and
	// returns how many.
	DeleteIdleBuckets(ctx context.Context, before time.Time) (int64, error)
	// TakeTokenUserDevices is TakeToken and, only when it took a token,
	// UserDevices of username, in one statement: one round trip and one
	// commit for a verify of a user not cached. When no token was taken
	// it returns ok false, the tokens left and no user. An unknown user
	// is ErrNotFound, its token taken.
	TakeTokenUserDevices(ctx context.Context, t TokenTake, username string) (ok bool, left float64, u User, devs []Device, err error)
}

// TokenTake is one take from a shared token bucket: TakeToken's
// arguments.
type TokenTake struct {
	Scope, Key string
	PerSecond  float64
	Burst      int
	Now        time.Time
}

var _ RateBuckets = (*pgStore)(nil)

// takeToken is one UPSERT: a new bucket starts full (burst-1 after this
// take); an existing one refills for the elapsed time (never negative,
// never beyond burst) and gives a token when it has one. The row lock
// of the upsert makes concurrent takes from every replica exact.
//
// Its transaction commits without waiting for the WAL flush
// (synchronous_commit off, for this transaction only): other replicas
// see the take at once, as with any commit, and only a crash of the
// database can lose the takes of its last fraction of a second (at most
// 3 × wal_writer_delay), which gives back a few tokens; failure counts and
// lockouts, which bound guessing, and accepted codes commit as before.
const takeToken = `
INSERT INTO rate_buckets (scope, key, tokens, updated, allowed)
VALUES ($1, $2, $4::double precision - 1, $5, true)
ON CONFLICT (scope, key) DO UPDATE SET
  tokens = CASE
    WHEN LEAST($4::double precision, rate_buckets.tokens + GREATEST(0, EXTRACT(EPOCH FROM ($5 - rate_buckets.updated))) * $3) >= 1
    THEN LEAST($4::double precision, rate_buckets.tokens + GREATEST(0, EXTRACT(EPOCH FROM ($5 - rate_buckets.updated))) * $3) - 1
    ELSE LEAST($4::double precision, rate_buckets.tokens + GREATEST(0, EXTRACT(EPOCH FROM ($5 - rate_buckets.updated))) * $3)
  END,
  allowed = LEAST($4::double precision, rate_buckets.tokens + GREATEST(0, EXTRACT(EPOCH FROM ($5 - rate_buckets.updated))) * $3) >= 1,
  updated = GREATEST($5, rate_buckets.updated)
RETURNING allowed, tokens, set_config('synchronous_commit', 'off', true) AS async`

func (s *pgStore) TakeToken(ctx context.Context, scope, key string, perSecond float64, burst int, now time.Time) (bool, float64, error) {
	var ok bool
	var left float64
	var async string
	err := s.w.db.QueryRowContext(ctx, takeToken, scope, key, perSecond, float64(burst), now.UTC()).Scan(&ok, &left, &async)
	return ok, left, err
}

// takeTokenUserDevicesQuery is takeToken joined with userDevicesQuery's
// read, which only runs when a token was taken ($6 is the folded
// username). The user's columns are COALESCEd too: no token, or no such
// user, is one row whose user id is 0.
const takeTokenUserDevicesQuery = `WITH take AS (` + takeToken + `)
SELECT take.allowed, take.tokens,
	COALESCE(u.id, 0), COALESCE(u.username, ''), COALESCE(u.display_name, ''), COALESCE(u.email, ''), COALESCE(u.password_hash, ''),
	COALESCE(u.admin, FALSE), COALESCE(u.disabled, FALSE), u.created, ` + userDevicesDeviceCols + `
	FROM take LEFT JOIN (users u LEFT JOIN mfa_devices d ON d.user_id = u.id)
		ON take.allowed AND u.username_key = $6
	ORDER BY d.id`

func (s *pgStore) TakeTokenUserDevices(ctx context.Context, t TokenTake, username string) (ok bool, left float64, u User, devs []Device, err error) {
	const op = "take a token and read the user with mfa devices"
	rows, err := s.w.db.QueryContext(ctx, takeTokenUserDevicesQuery, t.Scope, t.Key, t.PerSecond, float64(t.Burst), t.Now.UTC(), fold(username))
	if err != nil {
		return false, 0, User{}, nil, s.wrap(op, err)
	}
	defer rows.Close()
	dests := []any{&ok, &left, &u.ID, &u.Username, &u.DisplayName, &u.Email, &u.PasswordHash, &u.Admin, &u.Disabled, nullTime{&u.Created}}
	for rows.Next() {
		d, err := scanDevice(prefixScanner{rows, dests})
		if err != nil {
			return false, 0, User{}, nil, s.wrap(op, err)
		}
		if d.ID != 0 {
			devs = append(devs, d)
		}
	}
	if err := rows.Err(); err != nil {
		return false, 0, User{}, nil, s.wrap(op, err)
	}
	switch {
	case !ok:
		return false, left, User{}, nil, nil
	case u.ID == 0:
		return true, left, User{}, nil, s.wrap(op, sql.ErrNoRows)
	}
	return true, left, u, devs, nil
}

func (s *pgStore) DeleteIdleBuckets(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.w.db.ExecContext(ctx, `DELETE FROM rate_buckets WHERE updated < $1`, before.UTC())
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
