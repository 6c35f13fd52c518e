package vault

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/totpbox/totpbox/enroll"
)

// SourceLocal is the Source of an account added on the appliance itself
// rather than delivered by a registration server.
const SourceLocal = "local"

// MaxLabelLen is the longest label, in characters, that the vault accepts.
const MaxLabelLen = 64

// State is where an account stands in its registration.
type State int

// The states of an account. The zero value is Pending, so an account whose
// state was never set is not shown as usable.
const (
	// Pending: the account was offered but its registration has not been
	// confirmed with a correct code yet.
	Pending State = iota
	// Active: the registration is complete and the account is in use.
	Active
)

// String returns "pending" or "active".
func (s State) String() string {
	switch s {
	case Pending:
		return "pending"
	case Active:
		return "active"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// ParseState parses "pending" or "active", case-insensitively.
func ParseState(s string) (State, error) {
	switch strings.ToLower(s) {
	case "pending":
		return Pending, nil
	case "active":
		return Active, nil
	}
	return 0, fmt.Errorf("unknown account state %q (want pending or active)", s)
}

// MarshalText implements encoding.TextMarshaler.
func (s State) MarshalText() ([]byte, error) {
	if s != Pending && s != Active {
		return nil, fmt.Errorf("unknown account state %d", int(s))
	}
	return []byte(s.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *State) UnmarshalText(b []byte) error {
	v, err := ParseState(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// Account is one TOTP credential held by the appliance.
//
// Its String, GoString and LogValue methods never show the key's secret,
// so an Account may be printed and logged.
type Account struct {
	// ID is assigned by the vault when the account is added and never
	// changes.
	ID string
	// Issuer is the service the account belongs to. Add fills it from
	// Key.Issuer when empty.
	Issuer string
	// Label is the friendly name shown on the appliance; empty means
	// Name falls back to the issuer and the key's account name.
	Label string
	// Key is the TOTP credential, secret included.
	Key enroll.Key
	// State is Pending until the registration is confirmed, then Active.
	State State
	// Source is SourceLocal for an account added on the appliance, or the
	// id of the server registration that delivered it. Add fills in
	// SourceLocal when empty. Non-local sources are unique in a vault.
	Source string
	// User is the user the server placed the account for, shown beside
	// its name on the screen; empty for an account added on the
	// appliance.
	User string
	// Created and Updated are set by the vault from its clock.
	Created, Updated time.Time
	// InTPM reports that the secret lives in the TPM as a keyed-hash
	// object: Key.Secret is empty, and CodeAt asks the TPM. Set by the
	// vault in TPM mode when the account is active.
	InTPM bool

	tpmBlob []byte // the TPM's wrapped keyed-hash object, with InTPM
	codes   *codes // computes codes in the TPM, set on copies the vault hands out
}

// Name returns the name to show for the account: its label, or else
// "issuer: account name", or whichever of the two is set.
func (a Account) Name() string {
	if a.Label != "" {
		return a.Label
	}
	switch {
	case a.Issuer != "" && a.Key.Account != "":
		return a.Issuer + ": " + a.Key.Account
	case a.Issuer != "":
		return a.Issuer
	}
	return a.Key.Account
}

// IsLocal reports whether the account was added on the appliance rather
// than delivered by a server.
func (a Account) IsLocal() bool { return a.Source == SourceLocal }

// String describes the account without its secret.
func (a Account) String() string {
	return fmt.Sprintf("account %s %q (%s, source %s, key %v)", a.ID, a.Name(), a.State, a.Source, a.Key)
}

// GoString is like String, so that %#v does not print the secret either.
func (a Account) GoString() string { return "vault.Account{" + a.String() + "}" }

// LogValue implements slog.LogValuer without the secret.
func (a Account) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("id", a.ID),
		slog.String("name", a.Name()),
		slog.String("state", a.State.String()),
		slog.String("source", a.Source),
		slog.Bool("in_tpm", a.InTPM),
	)
}

// clone returns a deep copy, so callers never share the vault's secret
// bytes.
func (a Account) clone() Account {
	if a.Key.Secret != nil {
		a.Key.Secret = append([]byte(nil), a.Key.Secret...)
	}
	a.tpmBlob = append([]byte(nil), a.tpmBlob...)
	return a
}

// validate reports the first problem with a, without mentioning the secret.
func (a Account) validate() error {
	k := a.Key
	if a.InTPM {
		if len(a.tpmBlob) == 0 || len(k.Secret) != 0 {
			return errors.New("account key: held in the TPM, but without its blob or with a secret")
		}
		if _, ok := tpmHash(k.Algorithm); !ok {
			return fmt.Errorf("account key: %v cannot be held in the TPM", k.Algorithm)
		}
		k.Secret = make([]byte, enroll.MinSecretLen) // the parameters are checked; the secret is the TPM's
	}
	if err := k.Validate(); err != nil {
		return fmt.Errorf("account key: %w", err)
	}
	if err := validateLabel(a.Label); err != nil {
		return err
	}
	if err := validateText("issuer", a.Issuer, 2*MaxLabelLen); err != nil {
		return err
	}
	if err := validateText("user", a.User, 2*MaxLabelLen); err != nil {
		return err
	}
	if a.State != Pending && a.State != Active {
		return fmt.Errorf("unknown account state %d", int(a.State))
	}
	if a.Source == "" {
		return errors.New("account source is empty")
	}
	return validateText("source", a.Source, 2*MaxLabelLen)
}

func validateLabel(label string) error { return validateText("label", label, MaxLabelLen) }

func validateText(what, s string, max int) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("account %s is not valid UTF-8", what)
	}
	if n := utf8.RuneCountInString(s); n > max {
		return fmt.Errorf("account %s is %d characters, over the maximum of %d", what, n, max)
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return fmt.Errorf("account %s contains a control character", what)
		}
	}
	return nil
}
