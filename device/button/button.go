// Package button names the appliance's three buttons and their presses:
// a leaf that the loop (device) and the drivers (device/hw) share, so the
// drivers link neither the vault nor the TPM.
package button

import (
	"errors"
	"time"
)

// Button is one of the appliance's three buttons.
type Button int

// The buttons. Next moves to the next account (or page); OK reveals,
// accepts or moves forward; Back hides, rejects or returns to the code.
const (
	Next Button = iota
	OK
	Back
)

// String returns "next", "ok" or "back".
func (b Button) String() string {
	switch b {
	case Next:
		return "next"
	case OK:
		return "ok"
	case Back:
		return "back"
	}
	return "unknown"
}

// Parse parses a button name as String writes it.
func Parse(s string) (Button, error) {
	switch s {
	case "next":
		return Next, nil
	case "ok":
		return OK, nil
	case "back":
		return Back, nil
	}
	if len(s) > 32 {
		s = s[:32] + "..."
	}
	return 0, errors.New("unknown button \"" + s + "\" (want next, ok or back)")
}

// Event is one debounced press from hardware.
type Event struct {
	Button Button
	// At is when the press was recognised.
	At time.Time
}
