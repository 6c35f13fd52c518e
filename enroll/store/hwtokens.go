package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// HardwareToken is a hardware TOTP or HOTP token imported from a seed file
// (PSKC or OATH CSV), waiting to be assigned to a user or assigned to one.
// Its secret is sealed like an MFA device's, bound to its serial.
type HardwareToken struct {
	ID int64
	// Serial is printed on the token; unique among imported tokens.
	Serial string
	// HOTP marks an event token (RFC 4226); else it is a TOTP token.
	HOTP      bool
	Algorithm string // SHA1, SHA256, SHA512
	Digits    int
	// PeriodSec is a TOTP token's time step; for HOTP it is the default
	// (30) and unused.
	PeriodSec int
	// Counter is an HOTP token's next counter value, as the file said.
	Counter      int64
	Manufacturer string
	Model        string
	Secret       Sealed // encrypted secret, bound by SecretAAD
	// Username is the user the file assigned the token to (the CSV's
	// upn), or empty; a hint for whoever assigns it.
	Username string
	// DeviceID is the MFA device the token became when assigned; 0 while
	// unassigned (and again once that device is deleted).
	DeviceID int64
	Imported time.Time
	Assigned time.Time // zero while unassigned
}

// SecretAAD returns the associated data that binds a hardware token's
// sealed secret to its serial. Use it with Sealer.Seal and Sealer.Open, or
// let Sealer.SealHardwareToken and Sealer.OpenHardwareToken do so.
func (t HardwareToken) SecretAAD() []byte {
	return fmt.Appendf(nil, "totpbox hardware-token secret v1\x00serial:%s", t.Serial)
}

// SealHardwareToken seals a hardware token's secret into t.Secret, bound
// to t.Serial.
func (s *Sealer) SealHardwareToken(t *HardwareToken, secret []byte) error {
	sealed, err := s.Seal(secret, t.SecretAAD())
	if err != nil {
		return err
	}
	t.Secret = sealed
	return nil
}

// OpenHardwareToken returns the secret sealed by SealHardwareToken.
func (s *Sealer) OpenHardwareToken(t HardwareToken) ([]byte, error) {
	pt, err := s.Open(t.Secret, t.SecretAAD())
	if err != nil {
		return nil, fmt.Errorf("hardware token %s: %w", t.Serial, err)
	}
	return pt, nil
}

// CounterUse is an accepted HOTP code (or a resync's two) to record with
// one conditional update.
type CounterUse struct {
	DeviceID int64
	// Old is the counter the caller read; the update succeeds only while
	// the stored counter is still Old, so a code is accepted at most once.
	Old int64
	// New is the counter afterwards: one past the matched code's.
	New int64
	At  time.Time
	// Resync also clears the fail count, lockout level, lock and
	// out-of-sync mark, and is allowed while the device is locked (as
	// SetDrift).
	Resync bool
}

// HardwareTokens stores imported hardware tokens and moves HOTP counters.
type HardwareTokens interface {
	// ImportHardwareTokens adds tokens in one transaction, setting their
	// IDs: all of them or, on any error, none. A serial already imported
	// is ErrConflict, with an error naming the token.
	ImportHardwareTokens(ctx context.Context, ts []HardwareToken) error
	// ListHardwareTokens returns every imported token, by serial.
	ListHardwareTokens(ctx context.Context) ([]HardwareToken, error)
	// HardwareToken returns the token with serial; ErrNotFound.
	HardwareToken(ctx context.Context, serial string) (HardwareToken, error)
	// AssignHardwareToken creates d, the MFA device token serial becomes,
	// and links the token to it, in one transaction: only while the token
	// is unassigned (ErrStale otherwise; ErrNotFound when there is no such
	// token; ErrConflict when the user has a device of that name).
	AssignHardwareToken(ctx context.Context, serial string, d *Device) error
	// AdvanceCounter records an accepted HOTP code: one conditional
	// update that moves the counter from u.Old to u.New and sets LastUsed,
	// only while the device is an active HOTP device whose counter is
	// u.Old, not locked at u.At (unless u.Resync) and its user is not
	// disabled. ErrStale when the condition fails (a replay, a concurrent
	// verify, a lock, a disabled user); ErrNotFound when there is no such
	// device.
	AdvanceCounter(ctx context.Context, u CounterUse) error
}

const hwTokenCols = `id, serial, hotp, algorithm, digits, period_sec, counter, manufacturer, model,
	secret_key_id, secret, username, COALESCE(device_id, 0), imported, assigned`

func scanHardwareToken(row rowScanner) (HardwareToken, error) {
	var t HardwareToken
	err := row.Scan(&t.ID, &t.Serial, &t.HOTP, &t.Algorithm, &t.Digits, &t.PeriodSec, &t.Counter, &t.Manufacturer,
		&t.Model, &t.Secret.KeyID, &t.Secret.Ciphertext, &t.Username, &t.DeviceID, nullTime{&t.Imported}, nullTime{&t.Assigned})
	return t, err
}

func (s *sqlStore) ImportHardwareTokens(ctx context.Context, ts []HardwareToken) error {
	const op = "import hardware tokens"
	ids := make([]int64, len(ts))
	err := s.tx(ctx, op, func(t *txq) error {
		stmt, err := t.tx.PrepareContext(ctx, s.d.rebind(`INSERT INTO hardware_tokens
			(serial, hotp, algorithm, digits, period_sec, counter, manufacturer, model, secret_key_id, secret, username, imported)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (serial) DO NOTHING RETURNING id`))
		if err != nil {
			return err
		}
		defer stmt.Close()
		for i, tk := range ts {
			switch {
			case tk.Serial == "":
				return fmt.Errorf("token %d: empty serial", i+1)
			case len(tk.Secret.Ciphertext) == 0 || tk.Secret.KeyID == "":
				return fmt.Errorf("token %s: no sealed secret", tk.Serial)
			}
			imported := tk.Imported
			if imported.IsZero() {
				imported = time.Now()
			}
			err := stmt.QueryRowContext(ctx, tk.Serial, tk.HOTP, tk.Algorithm, tk.Digits, tk.PeriodSec, tk.Counter, tk.Manufacturer,
				tk.Model, tk.Secret.KeyID, tk.Secret.Ciphertext, tk.Username, s.d.timeArg(micro(imported))).Scan(&ids[i])
			if errors.Is(err, sql.ErrNoRows) {
				return conflictError("token " + tk.Serial + ": serial number already imported")
			}
			if err != nil {
				return fmt.Errorf("token %s: %w", tk.Serial, err)
			}
		}
		return nil
	})
	var ce conflictError
	if errors.As(err, &ce) {
		return ce
	}
	if err != nil {
		return err
	}
	for i := range ts {
		ts[i].ID = ids[i]
		if ts[i].Imported.IsZero() {
			ts[i].Imported = time.Now()
		}
		ts[i].Imported = micro(ts[i].Imported)
	}
	return nil
}

func (s *sqlStore) ListHardwareTokens(ctx context.Context) ([]HardwareToken, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+hwTokenCols+` FROM hardware_tokens ORDER BY serial`)
	return collect(s, "list hardware tokens", rows, err, scanHardwareToken)
}

func (s *sqlStore) HardwareToken(ctx context.Context, serial string) (HardwareToken, error) {
	t, err := scanHardwareToken(s.r.QueryRowContext(ctx, `SELECT `+hwTokenCols+` FROM hardware_tokens WHERE serial = ?`, serial))
	return t, s.wrap("hardware token "+serial, err)
}

func (s *sqlStore) AssignHardwareToken(ctx context.Context, serial string, d *Device) error {
	const op = "assign hardware token"
	var c Device
	err := s.tx(ctx, op, func(t *txq) error {
		var id, deviceID int64
		q := `SELECT id, COALESCE(device_id, 0) FROM hardware_tokens WHERE serial = ?`
		if _, ok := s.d.(postgresDialect); ok {
			q += ` FOR UPDATE`
		}
		if err := t.queryRow(ctx, q, serial).Scan(&id, &deviceID); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return ErrNotFound
			}
			return err
		}
		if deviceID != 0 {
			return ErrStale
		}
		var err error
		if c, err = s.insertDevice(ctx, t, *d); err != nil {
			return err
		}
		at := c.Registered
		if at.IsZero() {
			at = c.Created
		}
		_, err = t.exec(ctx, `UPDATE hardware_tokens SET device_id = ?, assigned = ? WHERE id = ? AND device_id IS NULL`,
			c.ID, s.d.timeArg(at), id)
		return err
	})
	if err != nil {
		return err
	}
	*d = c
	return nil
}

func (s *sqlStore) AdvanceCounter(ctx context.Context, u CounterUse) error {
	at := s.d.timeArg(micro(u.At))
	if u.Resync {
		return s.conditional(ctx, "resync mfa device counter", u.DeviceID, `UPDATE mfa_devices
			SET counter = ?, last_used = ?, out_of_sync = FALSE, fail_count = 0, fail_at = NULL, lockouts = 0, locked_until = NULL
			WHERE id = ? AND hotp AND status = 'active' AND counter = ? AND counter < ?`,
			u.New, at, u.DeviceID, u.Old, u.New)
	}
	return s.conditional(ctx, "record mfa device counter", u.DeviceID, `UPDATE mfa_devices
		SET counter = ?, last_used = ?
		WHERE id = ? AND hotp AND status = 'active' AND counter = ? AND counter < ?
			AND (locked_until IS NULL OR locked_until <= ?) AND `+userEnabled,
		u.New, at, u.DeviceID, u.Old, u.New, at)
}

// conflictError is an ErrConflict whose message says all, without the
// generic suffix.
type conflictError string

func (e conflictError) Error() string        { return string(e) }
func (e conflictError) Is(target error) bool { return target == ErrConflict }
