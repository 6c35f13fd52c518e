package store

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// The verify path's store methods: several accepted codes written in one
// transaction (RecordUses, for group commit), and a user read with their
// MFA devices in one query (UserDevices).

// recordUseQuery is RecordUse's conditional update, with numbered
// parameters (see recordUseArgs): step, at, drift, device id, ahead,
// steps before the step used with it (0), drift votes.
const recordUseQuery = `UPDATE mfa_devices
	SET ` + recordStep + `, last_used = $2, drift_steps = $3, drift_votes = $7
	WHERE id = $4 AND status = 'active' AND ` + stepUnused + `
		AND (locked_until IS NULL OR locked_until <= $2) AND ` + userEnabled

// recordUseArgs returns recordUseQuery's arguments for u.
func recordUseArgs(s *sqlStore, u UseStep) []any {
	return []any{u.Step, s.d.timeArg(micro(u.At)), u.Drift, u.DeviceID, u.Ahead, 0, u.DriftVotes}
}

// recordUsePGQuery is recordUseQuery for PostgreSQL, which also says
// whether the device exists, so a refused use needs no second round trip:
// it returns the number of rows updated (0 or 1) and the existence.
const recordUsePGQuery = `WITH u AS (` + recordUseQuery + `
	RETURNING 1)
SELECT (SELECT count(*) FROM u), EXISTS (SELECT 1 FROM mfa_devices WHERE id = $4)`

const recordUseOp = "record mfa device use"

// RecordUses records several uses in one write transaction: each is the
// conditional update of RecordUse, with its own result in errs[i]
// (nil, ErrStale, ErrNotFound), as if RecordUse had been called for each
// one after another — in order of device ID, and in the given order for
// uses of the same device, so of two uses of one step only the first is
// accepted. When the transaction fails every use gets the error and none
// is recorded.
func (s *sqlStore) RecordUses(ctx context.Context, us []UseStep) []error {
	errs := make([]error, len(us))
	switch len(us) {
	case 0:
		return errs
	case 1:
		errs[0] = s.RecordUse(ctx, us[0])
		return errs
	}
	// One order of row locks for every batch, so two batches (from two
	// servers sharing a PostgreSQL database) cannot deadlock.
	order := make([]int, len(us))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		switch {
		case us[a].DeviceID < us[b].DeviceID:
			return -1
		case us[a].DeviceID > us[b].DeviceID:
			return 1
		}
		return 0
	})
	var err error
	if _, ok := s.d.(postgresDialect); ok {
		err = s.recordUsesPG(ctx, us, order, errs)
	} else {
		err = s.recordUsesTx(ctx, us, order, errs)
	}
	if err != nil {
		err = s.wrap(recordUseOp, err)
		for i := range errs {
			errs[i] = err
		}
	}
	return errs
}

// recordUsesTx runs the updates as prepared statements in one write
// transaction (SQLite: BEGIN IMMEDIATE on the one write connection).
func (s *sqlStore) recordUsesTx(ctx context.Context, us []UseStep, order []int, errs []error) error {
	upd, _, err := s.w.stmt(ctx, s.numbered(recordUseQuery))
	if err != nil {
		return err
	}
	exists, _, err := s.w.stmt(ctx, `SELECT 1 FROM mfa_devices WHERE id = ?`)
	if err != nil {
		return err
	}
	tx, err := s.w.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	tupd := tx.StmtContext(ctx, upd)
	var texists *sql.Stmt
	for _, i := range order {
		u := us[i]
		res, err := tupd.ExecContext(ctx, recordUseArgs(s, u)...)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 1 {
			continue
		}
		if texists == nil {
			texists = tx.StmtContext(ctx, exists)
		}
		var one int
		switch err := texists.QueryRowContext(ctx, u.DeviceID).Scan(&one); err {
		case nil:
			errs[i] = fmt.Errorf("%s: %w", recordUseOp, ErrStale)
		case sql.ErrNoRows:
			errs[i] = fmt.Errorf("%s: %w", recordUseOp, ErrNotFound)
		default:
			return err
		}
	}
	return tx.Commit()
}

// recordUsesPG sends the updates to PostgreSQL in one pipelined batch,
// which runs as one implicit transaction: one round trip and one commit.
func (s *sqlStore) recordUsesPG(ctx context.Context, us []UseStep, order []int, errs []error) error {
	conn, err := s.w.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		c, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("unexpected driver connection %T", dc)
		}
		b := &pgx.Batch{}
		for _, i := range order {
			u := us[i]
			b.Queue(recordUsePGQuery, recordUseArgs(s, u)...)
		}
		br := c.Conn().SendBatch(ctx, b)
		for _, i := range order {
			var n int64
			var exists bool
			if err := br.QueryRow().Scan(&n, &exists); err != nil {
				br.Close()
				return err
			}
			switch {
			case n == 1:
			case exists:
				errs[i] = fmt.Errorf("%s: %w", recordUseOp, ErrStale)
			default:
				errs[i] = fmt.Errorf("%s: %w", recordUseOp, ErrNotFound)
			}
		}
		return br.Close()
	})
}

// userDevicesQuery reads a user and their MFA devices in one query; a
// user without devices is one row whose device columns are NULL (id 0
// after COALESCE). It has no ORDER BY: SQLite finds the devices through
// the (user_id, name_key) index and would sort them in a temporary B-tree
// on every cold verify; UserDevices puts its few rows in order itself. Strings and numbers are COALESCEd so they scan into
// plain Go values; NULL bytes and times scan as nil and the zero time.
const userDevicesQuery = `SELECT u.id, u.username, u.display_name, u.email, u.password_hash, u.admin, u.disabled, u.created,
	` + userDevicesDeviceCols + `
	FROM users u LEFT JOIN mfa_devices d ON d.user_id = u.id
	WHERE u.username_key = ?`

// userDevicesDeviceCols are the device columns of userDevicesQuery, in
// scanDevice's order, of a LEFT JOIN of mfa_devices as d.
const userDevicesDeviceCols = `COALESCE(d.id, 0), COALESCE(d.user_id, 0), COALESCE(d.uid, ''), COALESCE(d.name, ''), COALESCE(d.kind, ''),
	COALESCE(d.status, ''), COALESCE(d.algorithm, ''), COALESCE(d.digits, 0), COALESCE(d.period_sec, 0),
	COALESCE(d.secret_key_id, ''), d.secret, d.created, d.registered, d.expires_at,
	COALESCE(d.last_used_step, 0), d.last_used, COALESCE(d.drift_steps, 0), COALESCE(d.fail_count, 0), d.locked_until,
	COALESCE(d.lockouts, 0), COALESCE(d.out_of_sync, FALSE), COALESCE(d.drift_votes, 0), COALESCE(d.ahead_steps, ''),
	d.fail_at, COALESCE(d.hotp, FALSE), COALESCE(d.counter, 0)`

// UserDevices returns the user named username (ignoring case, as
// UserByName) with their MFA devices, oldest first (as DevicesByUser),
// read in one query: one snapshot, one round trip.
func (s *sqlStore) UserDevices(ctx context.Context, username string) (User, []Device, error) {
	const op = "user with mfa devices"
	rows, err := s.verifyReads().QueryContext(ctx, userDevicesQuery, fold(username))
	if err != nil {
		return User{}, nil, s.wrap(op, err)
	}
	defer rows.Close()
	var (
		u     User
		devs  []Device
		found bool
	)
	userDests := []any{&u.ID, &u.Username, &u.DisplayName, &u.Email, &u.PasswordHash, &u.Admin, &u.Disabled, nullTime{&u.Created}}
	for rows.Next() {
		d, err := scanDevice(prefixScanner{rows, userDests})
		if err != nil {
			return User{}, nil, s.wrap(op, err)
		}
		found = true
		if d.ID != 0 {
			devs = append(devs, d)
		}
	}
	if err := rows.Err(); err != nil {
		return User{}, nil, s.wrap(op, err)
	}
	if !found {
		return User{}, nil, s.wrap(op, sql.ErrNoRows)
	}
	slices.SortFunc(devs, func(a, b Device) int { return cmp.Compare(a.ID, b.ID) })
	return u, devs, nil
}

// prefixScanner scans a row into pre's destinations, then into those of
// the Scan call: one row holding two records.
type prefixScanner struct {
	rows *sql.Rows
	pre  []any
}

func (p prefixScanner) Scan(dest ...any) error {
	all := make([]any, 0, len(p.pre)+len(dest))
	return p.rows.Scan(append(append(all, p.pre...), dest...)...)
}

// verifyReads is the pool of the verify path's cold read. On SQLite it is
// the write connection: SQLite empties a connection's page cache whenever
// another connection has committed, which under verify load (every
// accepted code is a commit) is before nearly every read of the read
// pool, so each cold read there read its pages again (pread and the WAL
// index, a fifth of the read). The write connection's commits are its
// own, so its cache stays; the verify path needs that connection anyway
// for the use or the failure it records, and the janitor's long writes go
// in short transactions (see core's FlushVerifyCounts). Measured with
// BenchmarkVerifyOutside: about a fifth less server CPU per cold verify.
// On PostgreSQL reads and writes share one pool.
func (s *sqlStore) verifyReads() *pool {
	if _, ok := s.d.(sqliteDialect); ok {
		return s.w
	}
	return s.r
}
