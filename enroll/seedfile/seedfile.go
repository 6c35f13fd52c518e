// Package seedfile reads and writes the files that tokens' seeds travel
// in: PSKC (RFC 6030) from token vendors, the OATH CSV that Entra ID
// imports, and Google Authenticator's export (otpauth-migration URIs).
//
// Every reader is all or nothing: a file with one bad token yields no
// tokens and an error of one line naming the token (its serial) or the
// line, never a secret.
package seedfile

import (
	"fmt"
	"strings"

	"github.com/totpbox/totpbox/enroll"
)

// Kind says how a token counts: by time (TOTP) or by events (HOTP).
type Kind int

const (
	// TOTP tokens derive the moving factor from the time (RFC 6238).
	TOTP Kind = iota
	// HOTP tokens derive it from a counter that moves at each press (RFC 4226).
	HOTP
)

// String returns "totp" or "hotp".
func (k Kind) String() string {
	if k == HOTP {
		return "hotp"
	}
	return "totp"
}

// Token is one token read from a seed file: its identity, its key and,
// for HOTP, its counter.
type Token struct {
	// Serial identifies the token (printed on it); unique within a file.
	Serial string
	// Manufacturer and Model describe the hardware, where the file says.
	Manufacturer, Model string
	// Owner is the user the file assigns the token to (CSV upn, PSKC
	// UserId), or empty.
	Owner string
	// Kind is TOTP or HOTP.
	Kind Kind
	// Key holds the secret and its parameters. For HOTP, Period is unused
	// and set to the default so that Key.Validate holds.
	Key enroll.Key
	// Counter is an HOTP token's next counter value.
	Counter uint64
}

// validate checks the token's key and identity, naming the problem in
// one line without the secret.
func (t Token) validate() error {
	if strings.TrimSpace(t.Serial) == "" {
		return fmt.Errorf("token without a serial number")
	}
	if len(t.Serial) > 64 {
		return fmt.Errorf("token %.20q…: serial number longer than 64 characters", t.Serial)
	}
	for _, r := range t.Serial {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("token %q: serial number contains a control character", t.Serial)
		}
	}
	if err := t.Key.Validate(); err != nil {
		return fmt.Errorf("token %s: %v", t.Serial, err)
	}
	return nil
}

// checkUnique reports the first serial that appears twice.
func checkUnique(tokens []Token) error {
	seen := make(map[string]bool, len(tokens))
	for _, t := range tokens {
		if seen[t.Serial] {
			return fmt.Errorf("token %s: serial number appears twice in the file", t.Serial)
		}
		seen[t.Serial] = true
	}
	return nil
}
