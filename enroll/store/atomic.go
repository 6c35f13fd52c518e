package store

import (
	"context"
	"errors"
	"fmt"
)

// Atomic runs fn in one write transaction of the store: every call fn
// makes to the same store with the context it is given joins that
// transaction, and all of them commit together when fn returns nil, or
// none does when it returns an error (which Atomic returns as it is).
// A change and the audit row and outbox row that record it are written
// this way, so that one is never without the other: a crash between
// them loses both. A call to Atomic inside fn joins the outer
// transaction.
//
// Inside fn the store is one connection: calls made with another
// context wait for the transaction on SQLite, which has one writer.
// RecordUses, CreateUsersDevices, the rate buckets and fleet notices do
// not join a transaction; fn must not call them.
func (s *sqlStore) Atomic(ctx context.Context, fn func(ctx context.Context) error) error {
	if s.joined(ctx) != nil {
		return fn(ctx)
	}
	tx, err := s.w.db.BeginTx(ctx, nil)
	if err != nil {
		return s.wrap("begin transaction", err)
	}
	defer s.w.prepareWanted(ctx)
	amb := &ambient{w: s.w, r: s.r, t: &txq{tx: tx, d: s.d, p: s.w}}
	if err := fn(context.WithValue(ctx, ambientKey{}, amb)); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return s.wrap("commit transaction", err)
	}
	for _, f := range amb.after {
		f()
	}
	return nil
}

// AfterCommit runs fn once the transaction of the Atomic call ctx is in
// commits (never, when it rolls back), or at once outside Atomic: for
// what must not be seen before the change is, such as a wake of those
// waiting for it.
func AfterCommit(ctx context.Context, fn func()) {
	if a, ok := ctx.Value(ambientKey{}).(*ambient); ok {
		a.after = append(a.after, fn)
		return
	}
	fn()
}

// ambient is the transaction of an Atomic call, which the pools w and r
// of its store route their queries to.
type ambient struct {
	w, r  *pool
	t     *txq
	after []func() // see AfterCommit
}

type ambientKey struct{}

// joinedBy returns the transaction p's queries join under ctx, or nil.
func (p *pool) joinedBy(ctx context.Context) *txq {
	if a, ok := ctx.Value(ambientKey{}).(*ambient); ok && (a.w == p || a.r == p) {
		return a.t
	}
	return nil
}

// joined returns the transaction s's queries join under ctx, or nil.
func (s *sqlStore) joined(ctx context.Context) *txq { return s.w.joinedBy(ctx) }

// errorIn names op in an error returned by a transaction's fn, as tx does.
func (s *sqlStore) errorIn(op string, err error) error {
	if errors.Is(err, ErrNotFound) || errors.Is(err, ErrConflict) || errors.Is(err, ErrStale) {
		return fmt.Errorf("%s: %w", op, err)
	}
	return s.wrap(op, err)
}
