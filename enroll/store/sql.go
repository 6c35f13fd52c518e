package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// dialect is what differs between SQLite and PostgreSQL; the queries are
// written once, with ? placeholders.
type dialect interface {
	name() string
	// rebind turns ? placeholders into the dialect's own.
	rebind(q string) string
	// timeArg converts a time for a query; the zero time is NULL.
	timeArg(t time.Time) any
	// ilike is the case-insensitive LIKE operator.
	ilike() string
	isUnique(err error) bool
	isForeignKey(err error) bool
}

// sqlStore implements Store over database/sql for both dialects.
type sqlStore struct {
	d dialect
	// w takes every write; r every read. For SQLite w has one connection
	// (SQLite has one writer) and r several; for PostgreSQL they are the
	// same pool.
	w, r *pool
}

var _ Store = (*sqlStore)(nil)

// pool is a database/sql pool that rebinds the ? placeholders of queries
// for its dialect and, when prepare is set, keeps a prepared statement per
// query (pgx caches statements itself; modernc's SQLite driver does not,
// and preparing is most of the cost of a small query).
type pool struct {
	db      *sql.DB
	d       dialect
	prepare bool
	queries sync.Map // query text -> rebound text, or *sql.Stmt when prepare

	// wanted are the queries transactions ran unprepared, to prepare
	// once the transaction has ended (see txq.stmt); wants counts them.
	wanted sync.Map // query text -> struct{}
	wants  atomic.Int32
}

// maxWanted bounds the statements prepared for transactions: their
// texts are fixed but for the IN lists a few build, of bounded length.
const maxWanted = 512

func newPool(db *sql.DB, d dialect, prepare bool) *pool {
	return &pool{db: db, d: d, prepare: prepare}
}

// stmt returns the prepared statement of query, or the rebound text when
// the pool does not prepare.
func (p *pool) stmt(ctx context.Context, query string) (*sql.Stmt, string, error) {
	if v, ok := p.queries.Load(query); ok {
		if st, ok := v.(*sql.Stmt); ok {
			return st, "", nil
		}
		return nil, v.(string), nil
	}
	q := p.d.rebind(query)
	if !p.prepare {
		p.queries.Store(query, q)
		return nil, q, nil
	}
	st, err := p.db.PrepareContext(ctx, q)
	if err != nil {
		return nil, q, err
	}
	if v, loaded := p.queries.LoadOrStore(query, st); loaded {
		st.Close()
		return v.(*sql.Stmt), "", nil
	}
	return st, "", nil
}

// prepared returns the statement of query prepared on the pool, or nil
// when it is not (yet) prepared or the pool does not prepare.
func (p *pool) prepared(query string) *sql.Stmt {
	if !p.prepare {
		return nil
	}
	v, _ := p.queries.Load(query)
	st, _ := v.(*sql.Stmt)
	return st
}

// want notes a query a transaction ran unprepared: prepareWanted
// prepares it once the connection is free again.
func (p *pool) want(query string) {
	if !p.prepare || p.wants.Load() >= maxWanted {
		return
	}
	if _, loaded := p.wanted.LoadOrStore(query, struct{}{}); !loaded {
		p.wants.Add(1)
	}
}

// prepareWanted prepares the queries transactions wanted. It must not
// run inside a transaction of p: on SQLite the write pool has one
// connection, which the prepare waits for.
func (p *pool) prepareWanted(ctx context.Context) {
	p.wanted.Range(func(k, _ any) bool {
		q := k.(string)
		p.wanted.Delete(q)
		p.stmt(context.WithoutCancel(ctx), q) // on an error the query stays unprepared
		return true
	})
}

func (p *pool) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if t := p.joinedBy(ctx); t != nil {
		return t.exec(ctx, query, args...)
	}
	st, q, err := p.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	if st != nil {
		return st.ExecContext(ctx, args...)
	}
	return p.db.ExecContext(ctx, q, args...)
}

func (p *pool) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if t := p.joinedBy(ctx); t != nil {
		return t.QueryContext(ctx, query, args...)
	}
	st, q, err := p.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	if st != nil {
		return st.QueryContext(ctx, args...)
	}
	return p.db.QueryContext(ctx, q, args...)
}

func (p *pool) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if t := p.joinedBy(ctx); t != nil {
		return t.queryRow(ctx, query, args...)
	}
	// On a prepare error the query runs unprepared, and its Row reports
	// the error.
	st, q, _ := p.stmt(ctx, query)
	if st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return p.db.QueryRowContext(ctx, q, args...)
}

// Close closes the statements and the pool.
func (p *pool) Close() error {
	p.queries.Range(func(_, v any) bool {
		if st, ok := v.(*sql.Stmt); ok {
			st.Close()
		}
		return true
	})
	return p.db.Close()
}

func (s *sqlStore) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return s.w.ExecContext(ctx, query, args...)
}

// String names the database kind, for logs.
func (s *sqlStore) String() string { return s.d.name() }

// Ping checks both pools.
func (s *sqlStore) Ping(ctx context.Context) error {
	if err := s.w.db.PingContext(ctx); err != nil {
		return s.wrap("ping", err)
	}
	return s.wrap("ping", s.r.db.PingContext(ctx))
}

// Close releases both pools. On SQLite it first lets the query planner
// refresh its statistics, as SQLite advises before closing.
func (s *sqlStore) Close() error {
	if _, ok := s.d.(sqliteDialect); ok {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		s.w.db.ExecContext(ctx, `PRAGMA optimize`)
		cancel()
	}
	err := s.w.Close()
	if s.r != s.w {
		if rerr := s.r.Close(); err == nil {
			err = rerr
		}
	}
	return err
}

// rebindDollar numbers ? placeholders as $1, $2, ... (PostgreSQL). The
// queries of this package have no ? inside string literals.
func rebindDollar(q string) string {
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}

// nullTime scans a time stored as a timestamp (PostgreSQL) or as integer
// microseconds since the epoch (SQLite); NULL is the zero time.
type nullTime struct{ t *time.Time }

func (n nullTime) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*n.t = time.Time{}
	case int64:
		*n.t = time.UnixMicro(v).UTC()
	case time.Time:
		*n.t = v.UTC()
	default:
		return fmt.Errorf("scan time: unexpected %T", src)
	}
	return nil
}

// fold is the key that makes usernames and MFA device names unique
// regardless of case.
func fold(s string) string { return strings.ToLower(s) }

// wrap names the operation in an error; a unique or foreign-key violation
// becomes ErrConflict or ErrNotFound.
func (s *sqlStore) wrap(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("%s: %w", op, ErrNotFound)
	case s.d.isUnique(err):
		return fmt.Errorf("%s: %w", op, ErrConflict)
	case s.d.isForeignKey(err):
		return fmt.Errorf("%s: %w", op, ErrNotFound)
	}
	return fmt.Errorf("%s: %v: %w", op, s.d.name(), err)
}

// affected turns "no row changed" into ErrNotFound.
func (s *sqlStore) affected(op string, res sql.Result, err error) error {
	n, err := changed(res, err)
	if err != nil {
		return s.wrap(op, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", op, ErrNotFound)
	}
	return nil
}

// changed returns how many rows a statement changed; err is the
// statement's own.
func changed(res sql.Result, err error) (int64, error) {
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// rowScanner is a row of a query, or a single-row query.
type rowScanner interface{ Scan(...any) error }

// collect scans every row of a query with scan, closing the rows; err is
// the query's own error. Errors are wrapped as op.
func collect[T any](s *sqlStore, op string, rows *sql.Rows, err error, scan func(rowScanner) (T, error)) ([]T, error) {
	if err != nil {
		return nil, s.wrap(op, err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, s.wrap(op, err)
		}
		out = append(out, v)
	}
	return out, s.wrap(op, rows.Err())
}

func micro(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC().Truncate(time.Microsecond)
}
