package core

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/totpbox/totpbox/enroll"
	"github.com/totpbox/totpbox/enroll/seedfile"
	"github.com/totpbox/totpbox/enroll/store"
)

// Hardware tokens: seed files in (ImportHardwareTokens), tokens listed
// and assigned to users (HardwareTokens, AssignHardwareToken), seed files
// out (ExportHardwareTokens).

// TokenSealer seals and opens imported hardware tokens' secrets.
// *store.Sealer implements it.
type TokenSealer interface {
	SealHardwareToken(t *store.HardwareToken, secret []byte) error
	OpenHardwareToken(t store.HardwareToken) ([]byte, error)
}

// TokenStore is what importing and exporting hardware tokens need.
type TokenStore interface {
	store.HardwareTokens
	Device(ctx context.Context, id int64) (store.Device, error)
	Audit(ctx context.Context, e store.AuditEvent) error
	// Atomic commits the import with its audit row, or neither.
	Atomic(ctx context.Context, fn func(ctx context.Context) error) error
}

// ImportHardwareTokens seals the secrets of tokens read from a seed file
// and stores them, all or none, at now; it audits the import as actor.
// A serial already imported is an error naming the token. It returns how
// many were imported.
func ImportHardwareTokens(ctx context.Context, st TokenStore, sealer TokenSealer, tokens []seedfile.Token, actor string, now time.Time) (int, error) {
	if len(tokens) == 0 {
		return 0, errors.New("the file holds no tokens")
	}
	hw := make([]store.HardwareToken, len(tokens))
	for i, t := range tokens {
		h := store.HardwareToken{
			Serial:       t.Serial,
			HOTP:         t.Kind == seedfile.HOTP,
			Algorithm:    t.Key.Algorithm.String(),
			Digits:       t.Key.Digits,
			PeriodSec:    int(t.Key.Period / time.Second),
			Manufacturer: t.Manufacturer,
			Model:        t.Model,
			Username:     t.Owner,
			Imported:     now.UTC(),
		}
		if h.HOTP {
			if t.Counter > 1<<62 {
				return 0, fmt.Errorf("token %s: counter %d out of range", t.Serial, t.Counter)
			}
			h.Counter = int64(t.Counter)
		}
		if err := sealer.SealHardwareToken(&h, t.Key.Secret); err != nil {
			return 0, fmt.Errorf("token %s: %w", t.Serial, err)
		}
		hw[i] = h
	}
	e := store.AuditEvent{Time: now.UTC(), Actor: actor, Action: "hardware-token.import",
		Detail: fmt.Sprintf("imported %d hardware tokens, %s to %s", len(hw), hw[0].Serial, hw[len(hw)-1].Serial)}
	err := st.Atomic(ctx, func(ctx context.Context) error {
		if err := st.ImportHardwareTokens(ctx, hw); err != nil {
			return err
		}
		return st.Audit(ctx, e)
	})
	if err != nil {
		return 0, err
	}
	return len(hw), nil
}

// ExportHardwareTokens writes every imported token to w as a PSKC file
// encrypted with password (seedfile.WritePSKC: PBKDF2, AES-CBC and
// HMAC), auditing each token as actor. An assigned HOTP token is written
// with its MFA device's counter, so the file's next code is the one the
// server expects.
func ExportHardwareTokens(ctx context.Context, st TokenStore, sealer TokenSealer, w io.Writer, password []byte, o seedfile.WriteOptions, actor string, now time.Time) (int, error) {
	list, err := st.ListHardwareTokens(ctx)
	if err != nil {
		return 0, err
	}
	if len(list) == 0 {
		return 0, errors.New("no hardware tokens to export")
	}
	tokens := make([]seedfile.Token, len(list))
	for i, h := range list {
		secret, err := sealer.OpenHardwareToken(h)
		if err != nil {
			return 0, err
		}
		alg, err := enroll.ParseAlgorithm(h.Algorithm)
		if err != nil {
			return 0, fmt.Errorf("token %s: %w", h.Serial, err)
		}
		t := seedfile.Token{Serial: h.Serial, Manufacturer: h.Manufacturer, Model: h.Model, Owner: h.Username,
			Key: enroll.Key{Secret: secret, Algorithm: alg, Digits: h.Digits, Period: time.Duration(h.PeriodSec) * time.Second}}
		if h.HOTP {
			t.Kind, t.Counter = seedfile.HOTP, uint64(h.Counter)
			if h.DeviceID != 0 {
				if d, err := st.Device(ctx, h.DeviceID); err == nil && d.HOTP {
					t.Counter = uint64(d.Counter)
				}
			}
		}
		tokens[i] = t
	}
	if err := seedfile.WritePSKC(w, tokens, password, o); err != nil {
		return 0, err
	}
	for _, h := range list {
		e := store.AuditEvent{Time: now.UTC(), Actor: actor, Action: "hardware-token.export", Target: "hardware-token:" + h.Serial,
			Detail: "secret exported in a password-protected PSKC file"}
		if err := st.Audit(ctx, e); err != nil {
			return 0, fmt.Errorf("audit export of token %s: %w", h.Serial, err)
		}
	}
	return len(list), nil
}

// HardwareToken is an imported hardware token as the console and API
// show it: never its secret.
type HardwareToken struct {
	Serial       string    `json:"serial"`
	Kind         string    `json:"kind"` // totp or hotp
	Algorithm    string    `json:"algorithm"`
	Digits       int       `json:"digits"`
	PeriodSec    int       `json:"period,omitempty"`
	Manufacturer string    `json:"manufacturer,omitempty"`
	Model        string    `json:"model,omitempty"`
	Username     string    `json:"username,omitempty"` // pre-assigned by the file
	Assigned     bool      `json:"assigned"`
	DeviceID     int64     `json:"device_id,omitempty"`
	AssignedTo   string    `json:"assigned_to,omitempty"` // the user holding it
	Imported     time.Time `json:"imported"`
	AssignedAt   time.Time `json:"assigned_at,omitzero"`
}

func publicToken(h store.HardwareToken) HardwareToken {
	t := HardwareToken{Serial: h.Serial, Kind: "totp", Algorithm: h.Algorithm, Digits: h.Digits, PeriodSec: h.PeriodSec,
		Manufacturer: h.Manufacturer, Model: h.Model, Username: h.Username, Assigned: h.DeviceID != 0,
		DeviceID: h.DeviceID, Imported: h.Imported, AssignedAt: h.Assigned}
	if h.HOTP {
		t.Kind, t.PeriodSec = "hotp", 0
	}
	return t
}

// HardwareTokens lists the imported hardware tokens by serial, each with
// the user holding it when assigned.
func (s *Core) HardwareTokens(ctx context.Context) ([]HardwareToken, error) {
	list, err := s.store.ListHardwareTokens(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]HardwareToken, len(list))
	users := map[int64]string{}
	for i, h := range list {
		out[i] = publicToken(h)
		if h.DeviceID == 0 {
			continue
		}
		if d, err := s.store.Device(ctx, h.DeviceID); err == nil {
			name, ok := users[d.UserID]
			if !ok {
				if u, err := s.store.UserByID(ctx, d.UserID); err == nil {
					name = u.Username
				}
				users[d.UserID] = name
			}
			out[i].AssignedTo = name
		}
	}
	return out, nil
}

// AssignHardwareToken makes the imported token serial an MFA device of
// username (kind hardware, named by the serial), confirmed by a code
// typed from the token: proof that whoever assigns it holds it. A TOTP
// code must be within the verify window; an HOTP code within the
// look-ahead window of the token's counter, which then moves past it.
func (s *Core) AssignHardwareToken(ctx context.Context, a Actor, serial, username, code string) (store.Device, error) {
	if err := Allow(a, OpManageDevices); err != nil {
		return store.Device{}, err
	}
	h, err := s.store.HardwareToken(ctx, serial)
	if errors.Is(err, store.ErrNotFound) {
		return store.Device{}, Fail(404, "no hardware token %q", serial)
	}
	if err != nil {
		return store.Device{}, err
	}
	if h.DeviceID != 0 {
		return store.Device{}, Fail(409, "hardware token %s is already assigned", serial)
	}
	u, err := s.store.UserByName(ctx, username)
	if errors.Is(err, store.ErrNotFound) {
		return store.Device{}, Fail(404, "no user %q", username)
	}
	if err != nil {
		return store.Device{}, err
	}
	if err := AllowDevices(a, u); err != nil {
		return store.Device{}, err
	}
	if u.Disabled {
		return store.Device{}, Fail(409, "user %q is disabled", u.Username)
	}
	clean, err := cleanCodes([]string{code}, 1)
	if err != nil {
		return store.Device{}, err
	}
	st, err := s.settings.get(ctx)
	if err != nil {
		return store.Device{}, err
	}
	existing, err := s.store.DevicesByUser(ctx, u.ID)
	if err != nil {
		return store.Device{}, err
	}
	now := s.clock.Now()
	count := 0
	for _, d := range existing {
		if d.Status == store.StatusActive || d.ExpiresAt.After(now) {
			count++
		}
	}
	if count >= st.MaxDevices {
		return store.Device{}, Fail(409, "user %q already has %d MFA devices, the most allowed; delete one first", u.Username, count)
	}
	secret, err := s.sealer.OpenHardwareToken(h)
	if err != nil {
		return store.Device{}, err
	}
	alg, err := enroll.ParseAlgorithm(h.Algorithm)
	if err != nil {
		return store.Device{}, fmt.Errorf("hardware token %s: %w", serial, err)
	}
	k := enroll.Key{Secret: secret, Algorithm: alg, Digits: h.Digits, Period: time.Duration(h.PeriodSec) * time.Second}
	d := store.Device{UserID: u.ID, Name: h.Serial, Kind: store.KindHardware, Status: store.StatusActive,
		Algorithm: h.Algorithm, Digits: h.Digits, PeriodSec: h.PeriodSec, Created: now.UTC(), Registered: now.UTC(),
		LastUsed: now.UTC(), HOTP: h.HOTP}
	target := fmt.Sprintf("user:%s hardware-token:%s", u.Username, h.Serial)
	if h.HOTP {
		c, ok := enroll.VerifyHOTP(k, clean[0], uint64(h.Counter), s.cfg.HOTPLookAhead)
		if !ok {
			s.Audit(ctx, a, "hardware-token.assign.fail", target, "code did not match")
			return store.Device{}, Fail(400, "the code does not match hardware token %s; press its button and type the code it shows", serial)
		}
		d.Counter = int64(c) + 1
	} else {
		step, ok := enroll.Verify(k, clean[0], now, enroll.VerifyOptions{Window: st.VerifyWindow, LastUsed: -1})
		if !ok {
			s.Audit(ctx, a, "hardware-token.assign.fail", target, "code did not match")
			return store.Device{}, Fail(400, "the code does not match hardware token %s; type the code it shows now", serial)
		}
		d.LastUsedStep = step
	}
	if err := s.sealer.SealDevice(&d, secret); err != nil {
		return store.Device{}, fmt.Errorf("seal secret: %w", err)
	}
	err = s.Atomic(ctx, func(ctx context.Context) error {
		if err := s.store.AssignHardwareToken(ctx, serial, &d); err != nil {
			return err
		}
		s.Audit(ctx, a, "device.register", deviceTarget(u, d), fmt.Sprintf("registered %q (hardware token %s, %s)", d.Name, h.Serial, publicToken(h).Kind))
		return nil
	})
	switch {
	case errors.Is(err, store.ErrStale):
		return store.Device{}, Fail(409, "hardware token %s is already assigned", serial)
	case errors.Is(err, store.ErrConflict):
		return store.Device{}, Fail(409, "user %q already has an MFA device named %q", u.Username, serial)
	case errors.Is(err, store.ErrNotFound):
		return store.Device{}, Fail(404, "no hardware token %q or no user %q", serial, username)
	case err != nil:
		return store.Device{}, err
	}
	s.userChanged(u.Username)
	return d, nil
}

// ImportHardwareTokens is the package's ImportHardwareTokens with the
// core's store, sealer and clock, audited as a.
func (s *Core) ImportHardwareTokens(ctx context.Context, a Actor, tokens []seedfile.Token) (int, error) {
	if err := Allow(a, OpImportHardwareTokens); err != nil {
		return 0, err
	}
	return ImportHardwareTokens(ctx, s.store, s.sealer, tokens, a.Name, s.clock.Now())
}
