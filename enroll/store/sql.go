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
	"sync"
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
}

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

func (p *pool) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
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
	if err != nil {
		return s.wrap(op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return s.wrap(op, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", op, ErrNotFound)
	}
	return nil
}

// --- Users ---

const userCols = "id, username, display_name, email, password_hash, admin, disabled, created"

func scanUser(row rowScanner) (User, error) {
	var u User
	err := row.Scan(&u.ID, &u.Username, &u.DisplayName, &u.Email, &u.PasswordHash, &u.Admin, &u.Disabled, nullTime{&u.Created})
	return u, err
}

func (s *sqlStore) CreateUser(ctx context.Context, u *User) error {
	if u.Username == "" {
		return errors.New("create user: empty username")
	}
	created := u.Created
	if created.IsZero() {
		created = time.Now()
	}
	created = created.UTC().Truncate(time.Microsecond)
	var id int64
	err := s.w.QueryRowContext(ctx, `INSERT INTO users
		(username, username_key, display_name, email, password_hash, admin, disabled, created)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		u.Username, fold(u.Username), u.DisplayName, u.Email, u.PasswordHash, u.Admin, u.Disabled, s.d.timeArg(created),
	).Scan(&id)
	if err != nil {
		return s.wrap("create user", err)
	}
	u.ID, u.Created = id, created
	return nil
}

func (s *sqlStore) UserByName(ctx context.Context, username string) (User, error) {
	u, err := scanUser(s.r.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE username_key = ?`, fold(username)))
	return u, s.wrap("user by name", err)
}

func (s *sqlStore) UserByID(ctx context.Context, id int64) (User, error) {
	u, err := scanUser(s.r.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE id = ?`, id))
	return u, s.wrap("user by id", err)
}

// likeEscaper escapes LIKE's wildcards, with \ as the escape character.
var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

func (s *sqlStore) ListUsers(ctx context.Context, query string, limit int) ([]User, error) {
	q := `SELECT ` + userCols + ` FROM users`
	var args []any
	if query != "" {
		pat := "%" + likeEscaper.Replace(query) + "%"
		op := s.d.ilike()
		q += ` WHERE username ` + op + ` ? ESCAPE '\' OR display_name ` + op + ` ? ESCAPE '\' OR email ` + op + ` ? ESCAPE '\'`
		args = append(args, pat, pat, pat)
	}
	q += ` ORDER BY username_key, id`
	if limit > 0 {
		q += ` LIMIT ?`
		args = append(args, limit)
	}
	rows, err := s.r.QueryContext(ctx, q, args...)
	return collect(s, "list users", rows, err, scanUser)
}

func (s *sqlStore) UpdateUser(ctx context.Context, u User) error {
	res, err := s.exec(ctx, `UPDATE users SET username = ?, username_key = ?, display_name = ?, email = ?,
		password_hash = ?, admin = ?, disabled = ? WHERE id = ?`,
		u.Username, fold(u.Username), u.DisplayName, u.Email, u.PasswordHash, u.Admin, u.Disabled, u.ID)
	return s.affected("update user", res, err)
}

func (s *sqlStore) CountAdmins(ctx context.Context) (int, error) {
	var n int
	err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM users WHERE admin AND NOT disabled`).Scan(&n)
	return n, s.wrap("count admins", err)
}

// --- MFA devices ---

const deviceCols = `id, user_id, uid, name, kind, status, algorithm, digits, period_sec,
	secret_key_id, secret, created, registered, expires_at, last_used_step, last_used,
	drift_steps, fail_count, locked_until, lockouts, out_of_sync, drift_votes, ahead_steps, fail_at`

func scanDevice(row rowScanner) (Device, error) {
	var d Device
	var kind, status string
	err := row.Scan(&d.ID, &d.UserID, &d.UID, &d.Name, &kind, &status, &d.Algorithm, &d.Digits, &d.PeriodSec,
		&d.Secret.KeyID, &d.Secret.Ciphertext, nullTime{&d.Created}, nullTime{&d.Registered}, nullTime{&d.ExpiresAt},
		&d.LastUsedStep, nullTime{&d.LastUsed}, &d.DriftSteps, &d.FailCount, nullTime{&d.LockedUntil},
		&d.Lockouts, &d.OutOfSync, &d.DriftVotes, aheadSteps{&d.AheadSteps}, nullTime{&d.FailAt})
	d.Kind, d.Status = DeviceKind(kind), DeviceStatus(status)
	return d, err
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

func (s *sqlStore) CreateDevice(ctx context.Context, d *Device) error {
	switch {
	case d.Name == "":
		return errors.New("create mfa device: empty name")
	case d.Kind != KindAppliance && d.Kind != KindAuthenticatorApp:
		return fmt.Errorf("create mfa device: unknown kind %q", d.Kind)
	case d.Status != StatusPending && d.Status != StatusActive:
		return fmt.Errorf("create mfa device: unknown status %q", d.Status)
	case len(d.Secret.Ciphertext) == 0 || d.Secret.KeyID == "":
		return errors.New("create mfa device: no sealed secret")
	}
	if d.UID == "" {
		d.UID = NewDeviceUID()
	}
	c := *d
	if c.Created.IsZero() {
		c.Created = time.Now()
	}
	c.Created, c.Registered, c.ExpiresAt = micro(c.Created), micro(c.Registered), micro(c.ExpiresAt)
	c.LastUsed, c.LockedUntil, c.FailAt = micro(c.LastUsed), micro(c.LockedUntil), micro(c.FailAt)
	t := s.d.timeArg
	err := s.w.QueryRowContext(ctx, `INSERT INTO mfa_devices
		(user_id, uid, name, name_key, kind, status, algorithm, digits, period_sec, secret_key_id, secret,
		 created, registered, expires_at, last_used_step, last_used, drift_steps, fail_count, locked_until,
		 lockouts, out_of_sync, drift_votes, ahead_steps, fail_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		c.UserID, c.UID, c.Name, fold(c.Name), string(c.Kind), string(c.Status), c.Algorithm, c.Digits, c.PeriodSec,
		c.Secret.KeyID, c.Secret.Ciphertext, t(c.Created), t(c.Registered), t(c.ExpiresAt), c.LastUsedStep,
		t(c.LastUsed), c.DriftSteps, c.FailCount, t(c.LockedUntil),
		c.Lockouts, c.OutOfSync, c.DriftVotes, formatAheadSteps(c.AheadSteps), t(c.FailAt),
	).Scan(&c.ID)
	if err != nil {
		return s.wrap("create mfa device", err)
	}
	*d = c
	return nil
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
	res, err := s.exec(ctx, query, args...)
	if err != nil {
		return s.wrap(op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return s.wrap(op, err)
	}
	if n == 0 {
		return s.stale(ctx, op, id)
	}
	return nil
}

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
	const op = "record mfa device failure"
	now = micro(now)
	tx, err := s.w.db.BeginTx(ctx, nil)
	if err != nil {
		return Failure{}, s.wrap(op, err)
	}
	defer tx.Rollback()
	q := `SELECT fail_count, fail_at, lockouts, locked_until FROM mfa_devices WHERE id = ?`
	if _, ok := s.d.(postgresDialect); ok {
		q += ` FOR UPDATE`
	}
	var d Device
	if err := tx.QueryRowContext(ctx, s.d.rebind(q), id).Scan(&d.FailCount, nullTime{&d.FailAt}, &d.Lockouts, nullTime{&d.LockedUntil}); err != nil {
		return Failure{}, s.wrap(op, err)
	}
	f := Failure{Count: d.FailCount, FailAt: d.FailAt, Lockouts: d.Lockouts, LockedUntil: d.LockedUntil}
	if d.LockedUntil.After(now) {
		f.WasLocked = true
		return f, s.wrap(op, tx.Commit())
	}
	f = rule.fail(d, now)
	if _, err := tx.ExecContext(ctx, s.d.rebind(`UPDATE mfa_devices SET fail_count = ?, fail_at = ?, lockouts = ?, locked_until = ? WHERE id = ?`),
		f.Count, s.d.timeArg(f.FailAt), f.Lockouts, s.d.timeArg(f.LockedUntil), id); err != nil {
		return Failure{}, s.wrap(op, err)
	}
	return f, s.wrap(op, tx.Commit())
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

// --- Settings ---

func (s *sqlStore) Settings(ctx context.Context) (map[string]string, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT name, value FROM settings`)
	if err != nil {
		return nil, s.wrap("settings", err)
	}
	defer rows.Close()
	m := make(map[string]string)
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, s.wrap("settings", err)
		}
		m[k] = v
	}
	return m, s.wrap("settings", rows.Err())
}

func (s *sqlStore) SetSetting(ctx context.Context, name, value string) error {
	if name == "" {
		return errors.New("set setting: empty name")
	}
	_, err := s.exec(ctx, `INSERT INTO settings (name, value) VALUES (?, ?)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value`, name, value)
	return s.wrap("set setting "+strconv.Quote(name), err)
}

// --- Audit ---

func (s *sqlStore) Audit(ctx context.Context, e AuditEvent) error {
	if s.d.name() != "postgres" {
		// One writer at a time: ids commit in order without a lock.
		if e.Time.IsZero() {
			e.Time = time.Now()
		}
		_, err := s.exec(ctx, `INSERT INTO audit_events (time, actor, action, target, detail, ip)
		VALUES (?, ?, ?, ?, ?, ?)`, s.d.timeArg(micro(e.Time)), e.Actor, e.Action, e.Target, e.Detail, e.IP)
		return s.wrap("audit", err)
	}
	return s.tx(ctx, "audit", func(t *txq) error { return s.insertAudit(ctx, t, e) })
}

func (s *sqlStore) AuditEvents(ctx context.Context, limit int, before int64) ([]AuditEvent, error) {
	q := `SELECT id, time, actor, action, target, detail, ip FROM audit_events`
	var args []any
	if before > 0 {
		q += ` WHERE id < ?`
		args = append(args, before)
	}
	q += ` ORDER BY id DESC`
	if limit > 0 {
		q += ` LIMIT ?`
		args = append(args, limit)
	}
	rows, err := s.r.QueryContext(ctx, q, args...)
	return collect(s, "audit events", rows, err, func(r rowScanner) (AuditEvent, error) {
		var e AuditEvent
		err := r.Scan(&e.ID, nullTime{&e.Time}, &e.Actor, &e.Action, &e.Target, &e.Detail, &e.IP)
		return e, err
	})
}

// --- API tokens ---

const tokenCols = "id, name, hash, created, last_used, revoked"

func scanToken(row rowScanner) (Token, error) {
	var t Token
	err := row.Scan(&t.ID, &t.Name, &t.Hash, nullTime{&t.Created}, nullTime{&t.LastUsed}, &t.Revoked)
	return t, err
}

func (s *sqlStore) CreateToken(ctx context.Context, t *Token) error {
	if len(t.Hash) == 0 {
		return errors.New("create api token: empty hash")
	}
	c := *t
	if c.Created.IsZero() {
		c.Created = time.Now()
	}
	c.Created, c.LastUsed = micro(c.Created), micro(c.LastUsed)
	err := s.w.QueryRowContext(ctx, `INSERT INTO api_tokens (name, hash, created, last_used, revoked)
		VALUES (?, ?, ?, ?, ?) RETURNING id`,
		c.Name, c.Hash, s.d.timeArg(c.Created), s.d.timeArg(c.LastUsed), c.Revoked).Scan(&c.ID)
	if err != nil {
		return s.wrap("create api token", err)
	}
	*t = c
	return nil
}

func (s *sqlStore) TokenByHash(ctx context.Context, hash []byte) (Token, error) {
	t, err := scanToken(s.r.QueryRowContext(ctx, `SELECT `+tokenCols+` FROM api_tokens WHERE hash = ?`, hash))
	return t, s.wrap("api token", err)
}

func (s *sqlStore) ListTokens(ctx context.Context) ([]Token, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+tokenCols+` FROM api_tokens ORDER BY id`)
	return collect(s, "list api tokens", rows, err, scanToken)
}

func (s *sqlStore) RevokeToken(ctx context.Context, name string) error {
	res, err := s.exec(ctx, `UPDATE api_tokens SET revoked = TRUE WHERE name = ? AND NOT revoked`, name)
	return s.affected("revoke api token "+strconv.Quote(name), res, err)
}

func (s *sqlStore) TouchToken(ctx context.Context, id int64, at time.Time) error {
	res, err := s.exec(ctx, `UPDATE api_tokens SET last_used = ? WHERE id = ?`, s.d.timeArg(micro(at)), id)
	return s.affected("touch api token", res, err)
}

// --- Sessions ---

func (s *sqlStore) CreateSession(ctx context.Context, se Session) error {
	if len(se.Hash) == 0 {
		return errors.New("create session: empty hash")
	}
	if se.Created.IsZero() {
		se.Created = time.Now()
	}
	_, err := s.exec(ctx, `INSERT INTO sessions (hash, user_id, created, expires_at, csrf, mfa_pending)
		VALUES (?, ?, ?, ?, ?, ?)`,
		se.Hash, se.UserID, s.d.timeArg(micro(se.Created)), s.d.timeArg(micro(se.ExpiresAt)), se.CSRF, se.MFAPending)
	return s.wrap("create session", err)
}

func (s *sqlStore) SessionByHash(ctx context.Context, hash []byte) (Session, error) {
	var se Session
	err := s.r.QueryRowContext(ctx, `SELECT hash, user_id, created, expires_at, csrf, mfa_pending
		FROM sessions WHERE hash = ?`, hash).
		Scan(&se.Hash, &se.UserID, nullTime{&se.Created}, nullTime{&se.ExpiresAt}, &se.CSRF, &se.MFAPending)
	return se, s.wrap("session", err)
}

func (s *sqlStore) UpdateSession(ctx context.Context, se Session) error {
	res, err := s.exec(ctx, `UPDATE sessions SET user_id = ?, expires_at = ?, csrf = ?, mfa_pending = ? WHERE hash = ?`,
		se.UserID, s.d.timeArg(micro(se.ExpiresAt)), se.CSRF, se.MFAPending, se.Hash)
	return s.affected("update session", res, err)
}

func (s *sqlStore) DeleteSession(ctx context.Context, hash []byte) error {
	res, err := s.exec(ctx, `DELETE FROM sessions WHERE hash = ?`, hash)
	return s.affected("delete session", res, err)
}

func (s *sqlStore) DeleteUserSessions(ctx context.Context, userID int64) error {
	_, err := s.exec(ctx, `DELETE FROM sessions WHERE user_id = ?`, userID)
	return s.wrap("delete sessions of user", err)
}

func (s *sqlStore) DeleteExpiredSessions(ctx context.Context, now time.Time) error {
	_, err := s.exec(ctx, `DELETE FROM sessions WHERE expires_at IS NOT NULL AND expires_at < ?`, s.d.timeArg(micro(now)))
	return s.wrap("delete expired sessions", err)
}

// ClaimMasterKey binds the database to master key id unless it is bound
// already, and returns the id it is bound to.
func (s *sqlStore) ClaimMasterKey(ctx context.Context, id string) (string, error) {
	if _, err := s.exec(ctx, `INSERT INTO master_key_claim (one, key_id) VALUES (1, ?) ON CONFLICT (one) DO NOTHING`, id); err != nil {
		return "", s.wrap("claim master key", err)
	}
	var got string
	err := s.w.QueryRowContext(ctx, `SELECT key_id FROM master_key_claim WHERE one = 1`).Scan(&got)
	return got, s.wrap("read master key claim", err)
}

// MoveMasterKeyClaim binds the database to master key to, when it is
// bound to from (a rotation).
func (s *sqlStore) MoveMasterKeyClaim(ctx context.Context, from, to string) error {
	_, err := s.exec(ctx, `UPDATE master_key_claim SET key_id = ? WHERE one = 1 AND key_id = ?`, to, from)
	return s.wrap("move master key claim", err)
}

// SealedKeyIDs returns the distinct master key ids the sealed secrets of
// MFA devices use, and the id the database is bound to (ClaimMasterKey),
// sorted.
func (s *sqlStore) SealedKeyIDs(ctx context.Context) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT secret_key_id FROM mfa_devices WHERE secret_key_id <> ''
		UNION SELECT key_id FROM master_key_claim ORDER BY 1`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}
