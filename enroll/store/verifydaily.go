package store

import (
	"context"
	"time"
)

// VerifyDay is one user's verify activity on one UTC day.
type VerifyDay struct {
	UserID int64
	// Day is the day's midnight, UTC.
	Day time.Time
	// Successes counts codes accepted, Failures codes refused as wrong,
	// Lockouts MFA devices locked after too many failed codes.
	Successes, Failures, Lockouts int64
}

// VerifyDailyKeep is how long the janitor keeps the daily verify counts.
const VerifyDailyKeep = 90 * 24 * time.Hour

// VerifyDaily holds the users' daily verify counts (table verify_daily).
type VerifyDaily interface {
	// AddVerifyDays adds each day's counts to the stored ones for its
	// user and day (Day is truncated to its UTC day), in one
	// transaction, so several servers' counts add up. Days of users that
	// no longer exist are skipped.
	AddVerifyDays(ctx context.Context, days []VerifyDay) error
	// VerifyDays returns a user's days from since's UTC day on, oldest
	// first; days without activity are missing.
	VerifyDays(ctx context.Context, userID int64, since time.Time) ([]VerifyDay, error)
	// DeleteVerifyDays removes every user's days before before's UTC
	// day and returns how many.
	DeleteVerifyDays(ctx context.Context, before time.Time) (int, error)
}

// UTCDay is t's UTC day, as its midnight.
func UTCDay(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

func (s *sqlStore) AddVerifyDays(ctx context.Context, days []VerifyDay) error {
	if len(days) == 0 {
		return nil
	}
	if _, ok := s.d.(postgresDialect); ok {
		return s.addVerifyDaysPG(ctx, days)
	}
	return s.tx(ctx, "add verify days", func(t *txq) error {
		// The SELECT's WHERE skips a user deleted meanwhile (and keeps
		// SQLite's parser from reading ON CONFLICT as a join). Prepared
		// once: a flush may carry a row for each of tens of thousands of
		// users, and parsing the statement for each was most of its cost.
		st, err := t.tx.PrepareContext(ctx, t.d.rebind(`INSERT INTO verify_daily (user_id, day, successes, failures, lockouts)
			SELECT ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM users WHERE id = ?)
			ON CONFLICT (user_id, day) DO UPDATE SET
				successes = verify_daily.successes + excluded.successes,
				failures = verify_daily.failures + excluded.failures,
				lockouts = verify_daily.lockouts + excluded.lockouts`))
		if err != nil {
			return err
		}
		defer st.Close()
		for _, d := range days {
			if _, err := st.ExecContext(ctx, d.UserID, s.d.timeArg(UTCDay(d.Day)), d.Successes, d.Failures, d.Lockouts, d.UserID); err != nil {
				return err
			}
		}
		return nil
	})
}

// addVerifyDaysPG adds days on PostgreSQL in one statement: the rows go
// as five arrays (one round trip, one plan), where a statement per row
// took a round trip and a backend's parse and execute for each of tens of
// thousands of users a flush. Days of one user and UTC day are summed
// first, since one INSERT … ON CONFLICT may not touch a row twice.
func (s *sqlStore) addVerifyDaysPG(ctx context.Context, days []VerifyDay) error {
	type key struct {
		user int64
		day  time.Time
	}
	at := make(map[key]int, len(days))
	var users, succ, fail, lock []int64
	var when []time.Time
	for _, d := range days {
		k := key{d.UserID, UTCDay(d.Day)}
		i, ok := at[k]
		if !ok {
			i = len(users)
			at[k] = i
			users, when = append(users, k.user), append(when, k.day)
			succ, fail, lock = append(succ, 0), append(fail, 0), append(lock, 0)
		}
		succ[i] += d.Successes
		fail[i] += d.Failures
		lock[i] += d.Lockouts
	}
	_, err := s.w.db.ExecContext(ctx, `INSERT INTO verify_daily (user_id, day, successes, failures, lockouts)
		SELECT v.user_id, v.day, v.successes, v.failures, v.lockouts
			FROM unnest($1::bigint[], $2::timestamptz[], $3::bigint[], $4::bigint[], $5::bigint[])
				AS v(user_id, day, successes, failures, lockouts)
			WHERE EXISTS (SELECT 1 FROM users WHERE id = v.user_id)
		ON CONFLICT (user_id, day) DO UPDATE SET
			successes = verify_daily.successes + excluded.successes,
			failures = verify_daily.failures + excluded.failures,
			lockouts = verify_daily.lockouts + excluded.lockouts`, users, when, succ, fail, lock)
	return s.wrap("add verify days", err)
}

func (s *sqlStore) VerifyDays(ctx context.Context, userID int64, since time.Time) ([]VerifyDay, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT user_id, day, successes, failures, lockouts FROM verify_daily
		WHERE user_id = ? AND day >= ? ORDER BY day`, userID, s.d.timeArg(UTCDay(since)))
	return collect(s, "verify days", rows, err, func(r rowScanner) (VerifyDay, error) {
		var d VerifyDay
		err := r.Scan(&d.UserID, nullTime{&d.Day}, &d.Successes, &d.Failures, &d.Lockouts)
		return d, err
	})
}

func (s *sqlStore) DeleteVerifyDays(ctx context.Context, before time.Time) (int, error) {
	res, err := s.exec(ctx, `DELETE FROM verify_daily WHERE day < ?`, s.d.timeArg(UTCDay(before)))
	if err != nil {
		return 0, s.wrap("delete verify days", err)
	}
	n, err := res.RowsAffected()
	return int(n), s.wrap("delete verify days", err)
}
