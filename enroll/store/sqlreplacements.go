package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

const replacementCols = `id, old_id, old_name, spare_id, spare_name, state, not_moved, created, updated`

func scanReplacement(row rowScanner) (Replacement, error) {
	var r Replacement
	var state, notMoved string
	err := row.Scan(&r.ID, &r.OldID, &r.OldName, &r.SpareID, &r.SpareName, &state, &notMoved,
		nullTime{&r.Created}, nullTime{&r.Updated})
	r.State = ReplacementState(state)
	if err == nil && notMoved != "" {
		err = json.Unmarshal([]byte(notMoved), &r.NotMoved)
	}
	return r, err
}

func (s *sqlStore) CreateReplacement(ctx context.Context, r Replacement) error {
	if r.ID == "" || r.OldID == "" || r.SpareID == "" {
		return errors.New("create replacement: id, old and spare are required")
	}
	notMoved := ""
	if len(r.NotMoved) > 0 {
		b, err := json.Marshal(r.NotMoved)
		if err != nil {
			return fmt.Errorf("create replacement: %w", err)
		}
		notMoved = string(b)
	}
	at := micro(r.Created)
	return s.tx(ctx, "create replacement", func(t *txq) error {
		var one int
		err := t.queryRow(ctx, `SELECT 1 FROM replacements WHERE state <> 'done'
			AND (old_id IN (?, ?) OR spare_id IN (?, ?)) LIMIT 1`, r.OldID, r.SpareID, r.OldID, r.SpareID).Scan(&one)
		switch {
		case err == nil:
			return fmt.Errorf("an open replacement involves one of the appliances: %w", ErrConflict)
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		if _, err := t.exec(ctx, `INSERT INTO replacements (`+replacementCols+`) VALUES (?, ?, ?, ?, ?, 'waiting', ?, ?, ?)`,
			r.ID, r.OldID, r.OldName, r.SpareID, r.SpareName, notMoved, s.d.timeArg(at), s.d.timeArg(at)); err != nil {
			return err
		}
		for _, a := range r.Accounts {
			if _, err := t.exec(ctx, `INSERT INTO replacement_accounts (replacement_id, device_uid, rev, state)
				VALUES (?, ?, 0, 'waiting')`, r.ID, a.DeviceUID); err != nil {
				return err
			}
		}
		return nil
	})
}

// replacementAccounts fills r.Accounts from q.
func (s *sqlStore) replacementAccounts(ctx context.Context, q querier, r *Replacement) error {
	rows, err := q.QueryContext(ctx, `SELECT device_uid, rev, moved FROM replacement_accounts
		WHERE replacement_id = ? ORDER BY device_uid`, r.ID)
	r.Accounts, err = collect(s, "replacement accounts", rows, err, func(row rowScanner) (ReplacementAccount, error) {
		var a ReplacementAccount
		err := row.Scan(&a.DeviceUID, &a.Rev, nullTime{&a.MovedAt})
		return a, err
	})
	return err
}

func (s *sqlStore) Replacement(ctx context.Context, id string) (Replacement, error) {
	r, err := scanReplacement(s.r.QueryRowContext(ctx, `SELECT `+replacementCols+` FROM replacements WHERE id = ?`, id))
	if err != nil {
		return Replacement{}, s.wrap("replacement", err)
	}
	return r, s.replacementAccounts(ctx, s.r, &r)
}

func (s *sqlStore) ReplacementsOf(ctx context.Context, applianceID string) ([]Replacement, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+replacementCols+` FROM replacements
		WHERE old_id = ? OR spare_id = ? ORDER BY created DESC, id`, applianceID, applianceID)
	out, err := collect(s, "replacements of appliance", rows, err, scanReplacement)
	if err != nil {
		return nil, err
	}
	for i := range out {
		if err := s.replacementAccounts(ctx, s.r, &out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (s *sqlStore) SetReplacementState(ctx context.Context, id string, state ReplacementState, at time.Time) error {
	if state != ReplacementWaiting && state != ReplacementDeclined {
		return fmt.Errorf("set replacement state: %q is not waiting or declined", state)
	}
	return s.tx(ctx, "set replacement state", func(t *txq) error {
		var cur string
		err := t.queryRow(ctx, `SELECT state FROM replacements WHERE id = ?`, id).Scan(&cur)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return ErrNotFound
		case err != nil:
			return err
		case ReplacementState(cur) == ReplacementDone:
			return fmt.Errorf("replacement is done: %w", ErrStale)
		}
		_, err = t.exec(ctx, `UPDATE replacements SET state = ?, updated = ? WHERE id = ?`,
			string(state), s.d.timeArg(micro(at)), id)
		return err
	})
}

func (s *sqlStore) SetTakeoverRev(ctx context.Context, id, deviceUID string, rev int64) error {
	res, err := s.exec(ctx, `UPDATE replacement_accounts SET rev = ? WHERE replacement_id = ? AND device_uid = ?`,
		rev, id, deviceUID)
	return s.affected("set takeover rev", res, err)
}

func (s *sqlStore) MoveAccount(ctx context.Context, id, deviceUID string, wipe []byte, at time.Time) (AccountMove, error) {
	at = micro(at)
	var out AccountMove
	err := s.tx(ctx, "move account", func(t *txq) error {
		out = AccountMove{}
		oldID, state, err := replacementOf(ctx, t, id)
		if err != nil {
			return err
		}
		res, err := t.exec(ctx, `UPDATE replacement_accounts SET state = 'moved', moved = ?
			WHERE replacement_id = ? AND device_uid = ? AND state <> 'moved'`, s.d.timeArg(at), id, deviceUID)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 {
			var one int
			err := t.queryRow(ctx, `SELECT 1 FROM replacement_accounts WHERE replacement_id = ? AND device_uid = ?`,
				id, deviceUID).Scan(&one)
			if errors.Is(err, sql.ErrNoRows) {
				return ErrNotFound
			} else if err != nil {
				return err
			}
		} else {
			out.Moved = true
			// The old appliance no longer holds it: a delete there ends
			// its accepted offer, as deleting the MFA device would.
			var rev int64
			err := t.queryRow(ctx, `UPDATE appliances SET rev = rev + 1 WHERE id = ? AND NOT unpairing RETURNING rev`,
				oldID).Scan(&rev)
			switch {
			case err == nil:
				c := Change{ApplianceID: oldID, Rev: rev, Kind: ChangeDelete, DeviceUID: deviceUID, State: ChangePending, Created: at}
				if _, err := t.exec(ctx, `UPDATE appliance_changes SET state = 'cancelled', answered = ?
					WHERE appliance_id = ? AND kind = 'offer' AND device_uid = ? AND state = 'pending'`,
					s.d.timeArg(at), oldID, deviceUID); err != nil {
					return err
				}
				if err := insertChange(ctx, t, s.d, c); err != nil {
					return err
				}
			case !errors.Is(err, sql.ErrNoRows):
				return err
			}
		}
		return s.finishReplacement(ctx, t, id, oldID, state, wipe, at, &out)
	})
	if err != nil {
		return AccountMove{}, err
	}
	return out, nil
}

// replacementOf reads replacement id's old appliance and state inside t;
// ErrNotFound when there is no such replacement.
func replacementOf(ctx context.Context, t *txq, id string) (oldID string, state ReplacementState, err error) {
	err = t.queryRow(ctx, `SELECT old_id, state FROM replacements WHERE id = ?`, id).Scan(&oldID, &state)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", ErrNotFound
	}
	return oldID, state, err
}

// finishReplacement counts the accounts of replacement id left to move
// into out.Left and, when none is left and it is not done yet, makes it
// done and unpairs the old appliance oldID with an unpair change whose
// payload is wipe.
func (s *sqlStore) finishReplacement(ctx context.Context, t *txq, id, oldID string, state ReplacementState, wipe []byte, at time.Time, out *AccountMove) error {
	if err := t.queryRow(ctx, `SELECT COUNT(*) FROM replacement_accounts WHERE replacement_id = ? AND state <> 'moved'`,
		id).Scan(&out.Left); err != nil {
		return err
	}
	if out.Left > 0 || state == ReplacementDone {
		return nil
	}
	if _, err := t.exec(ctx, `UPDATE replacements SET state = 'done', updated = ? WHERE id = ?`,
		s.d.timeArg(at), id); err != nil {
		return err
	}
	out.Done = true
	var err error
	out.Wipe, err = s.unpair(ctx, t, oldID, wipe, at)
	if errors.Is(err, ErrNotFound) {
		out.Wipe, err = Change{}, nil // forgotten meanwhile: nothing to tell
	}
	return err
}

func (s *sqlStore) DropAccount(ctx context.Context, id, deviceUID string, wipe []byte, at time.Time) (AccountMove, error) {
	at = micro(at)
	var out AccountMove
	err := s.tx(ctx, "drop replacement account", func(t *txq) error {
		out = AccountMove{}
		oldID, state, err := replacementOf(ctx, t, id)
		if err != nil {
			return err
		}
		res, err := t.exec(ctx, `DELETE FROM replacement_accounts WHERE replacement_id = ? AND device_uid = ? AND state <> 'moved'`,
			id, deviceUID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			if err == nil {
				err = t.queryRow(ctx, `SELECT COUNT(*) FROM replacement_accounts WHERE replacement_id = ? AND state <> 'moved'`,
					id).Scan(&out.Left)
			}
			return err
		}
		return s.finishReplacement(ctx, t, id, oldID, state, wipe, at, &out)
	})
	if err != nil {
		return AccountMove{}, err
	}
	return out, nil
}
