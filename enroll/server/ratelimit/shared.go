package ratelimit

import (
	"context"
	"log/slog"
	"time"
)

// Limit is one limit keyed by a string: Limiter keeps its buckets in this
// process, Shared in the store every replica shares. Callers hold a Limit,
// so where the buckets live is decided where the server is assembled.
type Limit interface {
	// Allow takes one token from key's bucket at now. When the bucket is
	// empty it reports false and how long until a token is back.
	Allow(key string, now time.Time) (bool, time.Duration)
	// Prune forgets buckets that have refilled completely by now.
	Prune(now time.Time)
}

var (
	_ Limit = (*Limiter)(nil)
	_ Limit = (*Shared)(nil)
)

// Buckets are token buckets kept where every replica takes from them;
// store.RateBuckets (PostgreSQL) implements it.
type Buckets interface {
	TakeToken(ctx context.Context, scope, key string, perSecond float64, burst int, now time.Time) (ok bool, left float64, err error)
	DeleteIdleBuckets(ctx context.Context, before time.Time) (int64, error)
}

// Factory makes the Limit called name with rate r. A nil Factory makes
// in-process Limiters.
type Factory func(name string, r Rate) Limit

// New returns f's Limit for name, or an in-process Limiter when f is nil.
func (f Factory) New(name string, r Rate) Limit {
	if f == nil {
		return New(r)
	}
	return f(name, r)
}

// sharedTimeout bounds one take from the shared buckets.
const sharedTimeout = 2 * time.Second

// Shared is a Limit whose buckets live in the store, so N replicas give
// no more than one replica's budget. When the store cannot be reached it
// falls back to a bucket in this process (logged once per outage): the
// limit then holds per replica, and the request fails on the store anyway.
type Shared struct {
	b     Buckets
	scope string
	rate  Rate
	local *Limiter
	log   *slog.Logger
}

// NewShared returns a Limit named scope with rate r over b.
func NewShared(b Buckets, scope string, r Rate, log *slog.Logger) *Shared {
	if log == nil {
		log = slog.Default()
	}
	return &Shared{b: b, scope: scope, rate: r, local: New(r), log: log}
}

// Allow takes one token from key's shared bucket.
func (s *Shared) Allow(key string, now time.Time) (bool, time.Duration) {
	if s.rate.PerSecond < 0 {
		return true, 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), sharedTimeout)
	defer cancel()
	ok, left, err := s.b.TakeToken(ctx, s.scope, key, s.rate.PerSecond, s.rate.Burst, now)
	if err != nil {
		s.log.Warn("shared rate limit unavailable; limiting in this process", "limit", s.scope, "err", err)
		return s.local.Allow(key, now)
	}
	return s.Answer(ok, left)
}

// Bucket returns the scope and rate of the limit's shared buckets, for a
// caller that takes the token itself in a statement of its own (with
// Buckets.TakeToken's semantics) and answers with Answer. Off reports
// that the limit is turned off (a negative PerSecond): nothing is taken.
func (s *Shared) Bucket() (scope string, r Rate, off bool) {
	return s.scope, s.rate, s.rate.PerSecond < 0
}

// Buckets returns where the limit's buckets are kept.
func (s *Shared) Buckets() Buckets { return s.b }

// Answer is Allow's answer to a take from the shared bucket that gave ok
// and left tokens.
func (s *Shared) Answer(ok bool, left float64) (bool, time.Duration) {
	if ok {
		return true, 0
	}
	if s.rate.PerSecond == 0 {
		return false, time.Hour
	}
	return false, time.Duration((1 - left) / s.rate.PerSecond * float64(time.Second))
}

// Prune forgets the fallback buckets and removes shared buckets idle for
// an hour (all have refilled long before).
func (s *Shared) Prune(now time.Time) {
	s.local.Prune(now)
	ctx, cancel := context.WithTimeout(context.Background(), sharedTimeout)
	defer cancel()
	if _, err := s.b.DeleteIdleBuckets(ctx, now.Add(-time.Hour)); err != nil {
		s.log.Warn("prune shared rate limits", "err", err)
	}
}
