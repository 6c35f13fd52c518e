package store

import (
	"context"
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
}

var _ RateBuckets = (*pgStore)(nil)

// takeToken is one UPSERT: a new bucket starts full (burst-1 after this
// take); an existing one refills for the elapsed time (never negative,
// never beyond burst) and gives a token when it has one. The row lock
// of the upsert makes concurrent takes from every replica exact.
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
RETURNING allowed, tokens`

func (s *pgStore) TakeToken(ctx context.Context, scope, key string, perSecond float64, burst int, now time.Time) (bool, float64, error) {
	var ok bool
	var left float64
	err := s.w.db.QueryRowContext(ctx, takeToken, scope, key, perSecond, float64(burst), now.UTC()).Scan(&ok, &left)
	return ok, left, err
}

func (s *pgStore) DeleteIdleBuckets(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.w.db.ExecContext(ctx, `DELETE FROM rate_buckets WHERE updated < $1`, before.UTC())
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
