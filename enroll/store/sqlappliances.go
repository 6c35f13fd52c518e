package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// tx runs fn in one write transaction (IMMEDIATE on SQLite, so it holds
// the write lock from the start), committing when fn returns nil.
// Under an Atomic call it runs fn in that call's transaction instead,
// which commits later.
func (s *sqlStore) tx(ctx context.Context, op string, fn func(t *txq) error) error {
	if t := s.joined(ctx); t != nil {
		if err := fn(t); err != nil {
			return s.errorIn(op, err)
		}
		return nil
	}
	tx, err := s.w.db.BeginTx(ctx, nil)
	if err != nil {
		return s.wrap(op, err)
	}
	defer s.w.prepareWanted(ctx)
	if err := fn(&txq{tx: tx, d: s.d, p: s.w}); err != nil {
		tx.Rollback()
		return s.errorIn(op, err)
	}
	return s.wrap(op, tx.Commit())
}

// txq is a transaction that rebinds ? placeholders. On SQLite it runs
// the statements its pool p has prepared, and has p prepare the others
// once the transaction has ended: parsing a small statement costs more
// than running it, and a write transaction holds SQLite's one writer,
// which the verifies wait for. (Preparing within the transaction would
// wait for the one write connection it holds.)
type txq struct {
	tx *sql.Tx
	d  dialect
	p  *pool
}

// stmt returns q's statement prepared on the pool, in the transaction,
// or nil (and notes q as wanted) to run q unprepared.
func (t *txq) stmt(ctx context.Context, q string) *sql.Stmt {
	if t.p == nil {
		return nil
	}
	if st := t.p.prepared(q); st != nil {
		return t.tx.StmtContext(ctx, st)
	}
	t.p.want(q)
	return nil
}

// querier runs queries with ? placeholders: a pool, or a transaction
// (txq), so that one helper serves a single statement and a transaction.
type querier interface {
	ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

var _, _ querier = (*pool)(nil), (*txq)(nil)

// ExecContext, QueryContext and QueryRowContext make txq a querier.
func (t *txq) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return t.exec(ctx, q, args...)
}

func (t *txq) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if st := t.stmt(ctx, q); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return t.tx.QueryContext(ctx, t.d.rebind(q), args...)
}

func (t *txq) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	return t.queryRow(ctx, q, args...)
}

func (t *txq) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	if st := t.stmt(ctx, q); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return t.tx.ExecContext(ctx, t.d.rebind(q), args...)
}

func (t *txq) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	if st := t.stmt(ctx, q); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return t.tx.QueryRowContext(ctx, t.d.rebind(q), args...)
}

// --- Pairing codes ---

func (s *sqlStore) CreatePairingCode(ctx context.Context, c PairingCode) error {
	if c.Code == "" || len(c.SignKey) == 0 || len(c.BoxKey) == 0 {
		return errors.New("create pairing code: empty code or key")
	}
	if c.Created.IsZero() {
		c.Created = time.Now()
	}
	t := s.d.timeArg
	_, err := s.exec(ctx, `INSERT INTO pairing_codes (code, sign_key, box_key, version, created, expires)
		VALUES (?, ?, ?, ?, ?, ?)`, c.Code, c.SignKey, c.BoxKey, c.Version, t(micro(c.Created)), t(micro(c.Expires)))
	return s.wrap("create pairing code", err)
}

func (s *sqlStore) PairingCodeByKey(ctx context.Context, signKey []byte, now time.Time) (PairingCode, error) {
	var c PairingCode
	err := s.r.QueryRowContext(ctx, `SELECT code, sign_key, box_key, version, created, expires
		FROM pairing_codes WHERE sign_key = ? ORDER BY expires DESC LIMIT 1`, signKey).
		Scan(&c.Code, &c.SignKey, &c.BoxKey, &c.Version, nullTime{&c.Created}, nullTime{&c.Expires})
	if err == nil && !c.Expires.After(now) {
		err = sql.ErrNoRows
	}
	if err != nil {
		return PairingCode{}, s.wrap("pairing code by key", err)
	}
	return c, nil
}

func (s *sqlStore) PairAppliance(ctx context.Context, code string, now time.Time, a *Appliance) error {
	if a.ID == "" || a.Name == "" {
		return errors.New("pair appliance: empty id or name")
	}
	c := *a
	if c.Paired.IsZero() {
		c.Paired = now
	}
	c.Paired = micro(c.Paired)
	err := s.tx(ctx, "pair appliance", func(t *txq) error {
		err := t.queryRow(ctx, `SELECT sign_key, box_key, version FROM pairing_codes WHERE code = ? AND expires > ?`,
			code, s.d.timeArg(micro(now))).Scan(&c.SignKey, &c.BoxKey, &c.Version)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		} else if err != nil {
			return err
		}
		_, err = t.exec(ctx, `INSERT INTO appliances (id, name, name_key, sign_key, box_key, paired, version)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, c.ID, c.Name, fold(c.Name), c.SignKey, c.BoxKey, s.d.timeArg(c.Paired), c.Version)
		if s.d.isUnique(err) {
			return ErrConflict
		} else if err != nil {
			return err
		}
		_, err = t.exec(ctx, `DELETE FROM pairing_codes WHERE sign_key = ?`, c.SignKey)
		return err
	})
	if err != nil {
		return err
	}
	c.LastSeen, c.Accounts, c.Clock, c.Rev, c.Unpairing, c.Secrets = time.Time{}, 0, ClockReport{}, 0, false, ""
	*a = c
	return nil
}

func (s *sqlStore) DeleteExpiredPairingCodes(ctx context.Context, now time.Time) (int, error) {
	res, err := s.exec(ctx, `DELETE FROM pairing_codes WHERE expires <= ?`, s.d.timeArg(micro(now)))
	if err != nil {
		return 0, s.wrap("delete expired pairing codes", err)
	}
	n, err := res.RowsAffected()
	return int(n), s.wrap("delete expired pairing codes", err)
}

// --- Appliances ---

const applianceCols = `id, name, sign_key, box_key, paired, last_seen, version, accounts,
	clock_time, clock_bound_ns, clock_state, clock_ppm, clock_offset_ns, clock_at, rev, unpairing, secrets,
	clock_bound_unknown, clock_authenticated, site`

func scanAppliance(row rowScanner) (Appliance, error) {
	var a Appliance
	var bound, offset int64
	err := row.Scan(&a.ID, &a.Name, &a.SignKey, &a.BoxKey, nullTime{&a.Paired}, nullTime{&a.LastSeen}, &a.Version,
		&a.Accounts, nullTime{&a.Clock.ApplianceTime}, &bound, &a.Clock.State, &a.Clock.Frequency, &offset,
		nullTime{&a.Clock.At}, &a.Rev, &a.Unpairing, &a.Secrets, &a.Clock.BoundUnknown, &a.Clock.Authenticated, &a.Site)
	a.Clock.Bound, a.Clock.Offset = time.Duration(bound), time.Duration(offset)
	return a, err
}

func (s *sqlStore) Appliance(ctx context.Context, id string) (Appliance, error) {
	a, err := scanAppliance(s.r.QueryRowContext(ctx, `SELECT `+applianceCols+` FROM appliances WHERE id = ?`, id))
	return a, s.wrap("appliance", err)
}

func (s *sqlStore) ApplianceByKey(ctx context.Context, signKey []byte) (Appliance, error) {
	a, err := scanAppliance(s.r.QueryRowContext(ctx, `SELECT `+applianceCols+` FROM appliances WHERE sign_key = ?`, signKey))
	return a, s.wrap("appliance by key", err)
}

func (s *sqlStore) Appliances(ctx context.Context) ([]Appliance, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+applianceCols+` FROM appliances ORDER BY name_key, id`)
	return collect(s, "appliances", rows, err, scanAppliance)
}

func (s *sqlStore) RenameAppliance(ctx context.Context, id, name string) error {
	if name == "" {
		return errors.New("rename appliance: empty name")
	}
	res, err := s.exec(ctx, `UPDATE appliances SET name = ?, name_key = ? WHERE id = ?`, name, fold(name), id)
	return s.affected("rename appliance", res, err)
}

func (s *sqlStore) SetApplianceSite(ctx context.Context, id, site string) error {
	res, err := s.exec(ctx, `UPDATE appliances SET site = ? WHERE id = ?`, site, id)
	return s.affected("set appliance site", res, err)
}

func (s *sqlStore) SeenAppliance(ctx context.Context, id string, seen ApplianceSeen) error {
	return s.seen(ctx, s.w, id, seen)
}

// seen is SeenAppliance on q.
func (s *sqlStore) seen(ctx context.Context, q querier, id string, seen ApplianceSeen) error {
	switch seen.Secrets {
	case "", SecretsTPM, SecretsSoftware:
	default:
		return fmt.Errorf("seen appliance: unknown secrets mode %q", seen.Secrets)
	}
	t := s.d.timeArg
	var res sql.Result
	var err error
	if seen.Clock.At.IsZero() {
		res, err = q.ExecContext(ctx, `UPDATE appliances SET last_seen = ?, version = ?, accounts = ?, secrets = ? WHERE id = ?`,
			t(micro(seen.At)), seen.Version, seen.Accounts, seen.Secrets, id)
	} else {
		c := seen.Clock
		res, err = q.ExecContext(ctx, `UPDATE appliances SET last_seen = ?, version = ?, accounts = ?, secrets = ?,
			clock_time = ?, clock_bound_ns = ?, clock_bound_unknown = ?, clock_state = ?, clock_ppm = ?, clock_offset_ns = ?, clock_at = ?,
			clock_authenticated = ?
			WHERE id = ?`,
			t(micro(seen.At)), seen.Version, seen.Accounts, seen.Secrets, t(micro(c.ApplianceTime)), int64(c.knownBound()), c.BoundUnknown,
			c.State, c.Frequency, int64(c.Offset), t(micro(c.At)), c.Authenticated, id)
	}
	return s.affected("seen appliance", res, err)
}

func (s *sqlStore) SyncAppliance(ctx context.Context, r SyncRequest) (SyncResult, error) {
	if r.KeyID == "" || r.Nonce == "" {
		return SyncResult{}, errors.New("sync appliance: empty key id or nonce")
	}
	var out SyncResult
	err := s.tx(ctx, "sync appliance", func(t *txq) error {
		// The key first: requests signed by unknown keys record no nonce.
		a, err := scanAppliance(t.queryRow(ctx, `SELECT `+applianceCols+` FROM appliances WHERE sign_key = ?`, r.SignKey))
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		} else if err != nil {
			return err
		}
		// ON CONFLICT DO NOTHING rather than a unique violation, which
		// would abort the PostgreSQL transaction: of concurrent uses of
		// one nonce, the later waits for the earlier to commit and then
		// inserts nothing.
		res, err := t.exec(ctx, `INSERT INTO request_nonces (key_id, nonce, expires) VALUES (?, ?, ?)
			ON CONFLICT (key_id, nonce) DO NOTHING`, r.KeyID, r.Nonce, s.d.timeArg(micro(r.NonceExpires)))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return fmt.Errorf("nonce already used: %w", ErrConflict)
		}
		if SeenDue(a, r.Seen, r.SeenEvery, r.ClockSlack) {
			if err := s.seen(ctx, t, a.ID, r.Seen); err != nil {
				return err
			}
			a.LastSeen, a.Version, a.Accounts, a.Secrets = micro(r.Seen.At), r.Seen.Version, r.Seen.Accounts, r.Seen.Secrets
			if c := r.Seen.Clock; !c.At.IsZero() {
				c.ApplianceTime, c.At = micro(c.ApplianceTime), micro(c.At)
				a.Clock = c
			}
			out.SeenWritten = true
		}
		if !r.Sample.At.IsZero() {
			if _, err := s.appendClockSample(ctx, t, a.ID, r.Sample); err != nil {
				return err
			}
		}
		out.Appliance = a
		out.Changes, err = s.changes(ctx, t, a, r.After, r.Now, r.Limit)
		return err
	})
	if err != nil {
		return SyncResult{}, err
	}
	return out, nil
}

func (s *sqlStore) UnpairAppliance(ctx context.Context, id string, at time.Time) (Change, error) {
	var out Change
	err := s.tx(ctx, "unpair appliance", func(t *txq) error {
		var err error
		out, err = s.unpair(ctx, t, id, nil, micro(at))
		return err
	})
	if err != nil {
		return Change{}, err
	}
	return out, nil
}

// unpair is UnpairAppliance in transaction t; the unpair change it
// appends carries payload.
func (s *sqlStore) unpair(ctx context.Context, t *txq, id string, payload []byte, at time.Time) (Change, error) {
	var unpairing bool
	err := t.queryRow(ctx, `SELECT unpairing FROM appliances WHERE id = ?`, id).Scan(&unpairing)
	if errors.Is(err, sql.ErrNoRows) {
		return Change{}, ErrNotFound
	} else if err != nil {
		return Change{}, err
	}
	if unpairing {
		out, err := scanChange(t.queryRow(ctx, `SELECT `+changeCols+` FROM appliance_changes
			WHERE appliance_id = ? AND kind = 'unpair' ORDER BY rev DESC LIMIT 1`, id))
		if !errors.Is(err, sql.ErrNoRows) {
			return out, err
		}
		// The unpair change was answered and cleaned away: append
		// another, as for a first unpair.
	}
	if _, err := t.exec(ctx, `UPDATE appliance_changes SET state = 'cancelled', answered = ?
		WHERE appliance_id = ? AND kind = 'offer' AND state = 'pending'`, s.d.timeArg(at), id); err != nil {
		return Change{}, err
	}
	var rev int64
	if err := t.queryRow(ctx, `UPDATE appliances SET unpairing = TRUE, rev = rev + 1 WHERE id = ? RETURNING rev`,
		id).Scan(&rev); err != nil {
		return Change{}, err
	}
	out := Change{ApplianceID: id, Rev: rev, Kind: ChangeUnpair, Payload: payload, State: ChangePending, Created: at}
	return out, insertChange(ctx, t, s.d, out)
}

func (s *sqlStore) DeleteAppliance(ctx context.Context, id string) error {
	// Changes go with it (ON DELETE CASCADE).
	res, err := s.exec(ctx, `DELETE FROM appliances WHERE id = ?`, id)
	return s.affected("delete appliance", res, err)
}

// --- Change log ---

const changeCols = `appliance_id, rev, kind, device_uid, payload, state, created, expires, answered`

func scanChange(row rowScanner) (Change, error) {
	var c Change
	var kind, state string
	err := row.Scan(&c.ApplianceID, &c.Rev, &kind, &c.DeviceUID, &c.Payload, &state,
		nullTime{&c.Created}, nullTime{&c.Expires}, nullTime{&c.Answered})
	c.Kind, c.State = ChangeKind(kind), ChangeState(state)
	return c, err
}

func insertChange(ctx context.Context, t *txq, d dialect, c Change) error {
	_, err := t.exec(ctx, `INSERT INTO appliance_changes
		(appliance_id, rev, kind, device_uid, payload, state, created, expires, answered)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ApplianceID, c.Rev, string(c.Kind), c.DeviceUID, c.Payload, string(c.State),
		d.timeArg(c.Created), d.timeArg(c.Expires), d.timeArg(c.Answered))
	return err
}

func (s *sqlStore) AppendChange(ctx context.Context, c *Change) error {
	switch c.Kind {
	case ChangeOffer, ChangeCancel, ChangeExpire, ChangeDelete, ChangeRename, ChangeActivate, ChangeUnpair:
	default:
		return fmt.Errorf("append change: unknown kind %q", c.Kind)
	}
	n := *c
	if n.Created.IsZero() {
		n.Created = time.Now()
	}
	n.Created, n.Expires = micro(n.Created), micro(n.Expires)
	n.State, n.Answered = ChangePending, time.Time{}
	err := s.tx(ctx, "append change", func(t *txq) error {
		// The row lock this UPDATE takes orders concurrent appends, on
		// one server or several.
		err := t.queryRow(ctx, `UPDATE appliances SET rev = rev + 1 WHERE id = ? AND NOT unpairing RETURNING rev`,
			n.ApplianceID).Scan(&n.Rev)
		if errors.Is(err, sql.ErrNoRows) {
			var one int
			switch err := t.queryRow(ctx, `SELECT 1 FROM appliances WHERE id = ?`, n.ApplianceID).Scan(&one); {
			case errors.Is(err, sql.ErrNoRows):
				return ErrNotFound
			case err != nil:
				return err
			}
			return fmt.Errorf("appliance is unpairing: %w", ErrStale)
		} else if err != nil {
			return err
		}
		switch n.Kind {
		case ChangeCancel, ChangeExpire, ChangeDelete:
			if _, err := t.exec(ctx, `UPDATE appliance_changes SET state = 'cancelled', answered = ?
				WHERE appliance_id = ? AND kind = 'offer' AND device_uid = ? AND state = 'pending'`,
				s.d.timeArg(n.Created), n.ApplianceID, n.DeviceUID); err != nil {
				return err
			}
		}
		return insertChange(ctx, t, s.d, n)
	})
	if err != nil {
		return err
	}
	*c = n
	return nil
}

func (s *sqlStore) Changes(ctx context.Context, applianceID string, after int64, now time.Time, limit int) ([]Change, error) {
	return s.changes(ctx, s.r, Appliance{ID: applianceID, Rev: -1}, after, now, limit)
}

// changes is Changes on q for appliance a. When a.Rev (read in the same
// transaction as q, or -1 when unknown) is at most after, there are no
// changes after it to read.
func (s *sqlStore) changes(ctx context.Context, q querier, a Appliance, after int64, now time.Time, limit int) ([]Change, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+changeCols+` FROM appliance_changes
		WHERE appliance_id = ? AND rev <= ? AND kind = 'offer' AND state = 'pending' AND expires > ?
		ORDER BY rev`, a.ID, after, s.d.timeArg(micro(now)))
	open, err := collect(s, "changes", rows, err, scanChange)
	if err != nil || a.Rev >= 0 && a.Rev <= after {
		return open, err
	}
	query := `SELECT ` + changeCols + ` FROM appliance_changes WHERE appliance_id = ? AND rev > ? ORDER BY rev`
	args := []any{a.ID, after}
	if limit > 0 {
		query += ` LIMIT ?`
		args = append(args, limit)
	}
	rows, err = q.QueryContext(ctx, query, args...)
	newer, err := collect(s, "changes", rows, err, scanChange)
	if err != nil {
		return nil, err
	}
	return append(open, newer...), nil
}

func (s *sqlStore) Change(ctx context.Context, applianceID string, rev int64) (Change, error) {
	c, err := scanChange(s.r.QueryRowContext(ctx, `SELECT `+changeCols+` FROM appliance_changes
		WHERE appliance_id = ? AND rev = ?`, applianceID, rev))
	return c, s.wrap("change", err)
}

func (s *sqlStore) AnswerChange(ctx context.Context, applianceID string, rev int64, state ChangeState, at time.Time) (Change, error) {
	switch state {
	case ChangePending, ChangeAccepted, ChangeRejected, ChangeAcked, ChangeCancelled:
	default:
		return Change{}, fmt.Errorf("answer change: unknown state %q", state)
	}
	if state != ChangePending {
		// One conditional UPDATE: of two answers at once, one wins.
		c, err := scanChange(s.w.QueryRowContext(ctx, `UPDATE appliance_changes
			SET state = ?, answered = ?, payload = CASE WHEN kind = 'offer' THEN NULL ELSE payload END
			WHERE appliance_id = ? AND rev = ? AND state = 'pending' RETURNING `+changeCols,
			string(state), s.d.timeArg(micro(at)), applianceID, rev))
		if err == nil {
			return c, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return Change{}, s.wrap("answer change", err)
		}
	}
	c, err := scanChange(s.r.QueryRowContext(ctx, `SELECT `+changeCols+` FROM appliance_changes
		WHERE appliance_id = ? AND rev = ?`, applianceID, rev))
	if err != nil {
		return Change{}, s.wrap("answer change", err)
	}
	if c.State != state {
		return c, fmt.Errorf("answer change: already %s: %w", c.State, ErrStale)
	}
	return c, nil
}

func (s *sqlStore) OffersByDevice(ctx context.Context, deviceUID string) ([]Change, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+changeCols+` FROM appliance_changes
		WHERE device_uid = ? AND kind = 'offer' ORDER BY created DESC, rev DESC`, deviceUID)
	return collect(s, "offers of mfa device", rows, err, scanChange)
}

func (s *sqlStore) DeleteAnsweredChanges(ctx context.Context, before time.Time) (int, error) {
	// An accepted offer is the record of which appliance holds the
	// account: it stays until a later cancel, expire or delete of that
	// MFA device on that appliance (or the appliance's removal).
	res, err := s.exec(ctx, `DELETE FROM appliance_changes
		WHERE state <> 'pending' AND answered IS NOT NULL AND answered < ?
		AND NOT (kind = 'offer' AND state = 'accepted' AND NOT EXISTS (
			SELECT 1 FROM appliance_changes later
			WHERE later.appliance_id = appliance_changes.appliance_id
			AND later.device_uid = appliance_changes.device_uid
			AND later.kind IN ('cancel', 'expire', 'delete') AND later.rev > appliance_changes.rev))`,
		s.d.timeArg(micro(before)))
	if err != nil {
		return 0, s.wrap("delete answered changes", err)
	}
	n, err := res.RowsAffected()
	return int(n), s.wrap("delete answered changes", err)
}

func (s *sqlStore) DevicesOnAppliance(ctx context.Context, applianceID string) ([]Device, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+deviceCols+` FROM mfa_devices WHERE uid IN (
		SELECT c.device_uid FROM appliance_changes c
		WHERE c.appliance_id = ? AND c.kind = 'offer' AND c.state = 'accepted' AND NOT EXISTS (
			SELECT 1 FROM appliance_changes later
			WHERE later.appliance_id = c.appliance_id AND later.device_uid = c.device_uid
			AND later.kind IN ('cancel', 'expire', 'delete') AND later.rev > c.rev))
		ORDER BY user_id, id`, applianceID)
	return collect(s, "mfa devices on appliance", rows, err, scanDevice)
}

func (s *sqlStore) AdoptDevices(ctx context.Context, applianceID string, uids []string, at time.Time) ([]Adoption, error) {
	at = micro(at)
	var adopted []Adoption
	err := s.tx(ctx, "adopt mfa devices", func(t *txq) error {
		adopted = adopted[:0]
		var unpairing bool
		switch err := t.queryRow(ctx, `SELECT unpairing FROM appliances WHERE id = ?`, applianceID).Scan(&unpairing); {
		case errors.Is(err, sql.ErrNoRows):
			return ErrNotFound
		case err != nil:
			return err
		case unpairing:
			return fmt.Errorf("appliance is unpairing: %w", ErrStale)
		}
		for _, uid := range uids {
			var active int
			err := t.queryRow(ctx, `SELECT 1 FROM mfa_devices WHERE uid = ? AND status = 'active'`, uid).Scan(&active)
			if errors.Is(err, sql.ErrNoRows) {
				continue // deleted, or never confirmed
			}
			if err != nil {
				return err
			}
			// Who holds it: accepted offers not followed by a cancel,
			// expire or delete on the same appliance.
			rows, err := t.QueryContext(ctx, `SELECT DISTINCT c.appliance_id FROM appliance_changes c
				WHERE c.device_uid = ? AND c.kind = 'offer' AND c.state = 'accepted' AND NOT EXISTS (
					SELECT 1 FROM appliance_changes later
					WHERE later.appliance_id = c.appliance_id AND later.device_uid = c.device_uid
					AND later.kind IN ('cancel', 'expire', 'delete') AND later.rev > c.rev)`, uid)
			if err != nil {
				return err
			}
			here, elsewhere := false, false
			for rows.Next() {
				var holder string
				if err := rows.Scan(&holder); err != nil {
					rows.Close()
					return err
				}
				if holder == applianceID {
					here = true
				} else {
					elsewhere = true
				}
			}
			if err := rows.Close(); err != nil {
				return err
			}
			if err := rows.Err(); err != nil {
				return err
			}
			switch {
			case elsewhere:
				continue
			case here:
				adopted = append(adopted, Adoption{UID: uid})
				continue
			}
			var rev int64
			if err := t.queryRow(ctx, `UPDATE appliances SET rev = rev + 1 WHERE id = ? RETURNING rev`, applianceID).Scan(&rev); err != nil {
				return err
			}
			c := Change{ApplianceID: applianceID, Rev: rev, Kind: ChangeOffer, DeviceUID: uid,
				State: ChangeAccepted, Created: at, Answered: at}
			if err := insertChange(ctx, t, s.d, c); err != nil {
				return err
			}
			adopted = append(adopted, Adoption{UID: uid, New: true})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return adopted, nil
}

// --- Clock history ---

func (s *sqlStore) AppendClockSample(ctx context.Context, applianceID string, c ClockSample) (bool, error) {
	return s.appendClockSample(ctx, s.w, applianceID, c)
}

// appendClockSample is AppendClockSample on q.
func (s *sqlStore) appendClockSample(ctx context.Context, q querier, applianceID string, c ClockSample) (bool, error) {
	if c.At.IsZero() {
		return false, errors.New("append clock sample: zero time")
	}
	at := c.At.UTC().Truncate(time.Minute)
	res, err := q.ExecContext(ctx, `INSERT INTO clock_history (appliance_id, at, offset_ns, bound_ns, bound_unknown, state)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (appliance_id, at) DO NOTHING`,
		applianceID, s.d.timeArg(at), int64(c.Offset), int64(c.knownBound()), c.BoundUnknown, c.State)
	if err != nil {
		return false, s.wrap("append clock sample", err)
	}
	n, err := res.RowsAffected()
	return n > 0, s.wrap("append clock sample", err)
}

func (s *sqlStore) ClockSamples(ctx context.Context, applianceID string, since time.Time) ([]ClockSample, error) {
	if since.IsZero() {
		since = time.Unix(0, 0) // the zero time is NULL to the database
	}
	rows, err := s.r.QueryContext(ctx, `SELECT at, offset_ns, bound_ns, bound_unknown, state FROM clock_history
		WHERE appliance_id = ? AND at >= ? ORDER BY at`, applianceID, s.d.timeArg(micro(since)))
	return collect(s, "clock samples", rows, err, func(r rowScanner) (ClockSample, error) {
		var c ClockSample
		var off, bound int64
		err := r.Scan(nullTime{&c.At}, &off, &bound, &c.BoundUnknown, &c.State)
		c.Offset, c.Bound = time.Duration(off), time.Duration(bound)
		return c, err
	})
}

func (s *sqlStore) DeleteClockSamples(ctx context.Context, before time.Time) (int, error) {
	res, err := s.exec(ctx, `DELETE FROM clock_history WHERE at < ?`, s.d.timeArg(micro(before)))
	if err != nil {
		return 0, s.wrap("delete clock samples", err)
	}
	n, err := res.RowsAffected()
	return int(n), s.wrap("delete clock samples", err)
}
